#!/usr/bin/env node
import { enableCompileCache } from 'node:module';

// V8's compile cache (in the system's temp folder, or NODE_COMPILE_CACHE): each command parses and
// compiles the CLI's modules (zod, pg, the NATS client, ...) once per version instead of at every start,
// which is most of a short command's time (fieldbeam-cloud edge list). It must be on before they load.
enableCompileCache();
await import('./cli-main.js');
