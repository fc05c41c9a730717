// Runs the example API: `tsx src/api/serve-main.ts` (configuration from the environment; see serve.ts and the README).
import { serve } from './serve.js';

try {
  await serve();
} catch (error) {
  console.error(`dualwrite api: cannot start: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
