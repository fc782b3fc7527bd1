#!/usr/bin/env node
// Runs the TypeScript CLI through tsx so no build step stands between a clone and `npx meteorctl`.
require('tsx/cjs/api').register();
require('../cli/main.ts');
