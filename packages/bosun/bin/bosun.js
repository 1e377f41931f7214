#!/usr/bin/env node
// The compiled CLI lives in dist/; `npm install` (prepare) and `make` build it.
import { main } from '../dist/tooling/cli/main.js';

await main(process.argv);
