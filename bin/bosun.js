#!/usr/bin/env node
// The compiled CLI lives in dist/; `npm install` (prepare) and `make` build it.
import { main } from '../dist/src/cli/main.js';

await main(process.argv);
