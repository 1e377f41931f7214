// Entry point for running the CLI straight from source with tsx (development and tests).
import { main } from './main.js';

await main(process.argv);
