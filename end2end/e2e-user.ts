/** The admin the end-to-end server is started with (`giftrecon user add e2e --role admin`). */
export const E2E_USER = 'e2e';
export const E2E_PASSWORD = 'e2e correct horse battery staple';
/** A finance preparer, for the queues (admins do not work them). */
export const E2E_FINANCE = 'e2e-finance';

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** `giftrecon demo`, started beside the fixture server: its users share one password. */
export const DEMO_PORT = Number(process.env.GIFTRECON_DEMO_PORT ?? 3108);
export const DEMO_URL = `http://127.0.0.1:${DEMO_PORT}`;
export const DEMO_PASSWORD = 'giftrecon-demo';
// Chosen once by the runner; its workers inherit the environment, so they agree on the folder.
if (!process.env.GIFTRECON_DEMO_DIR) {
  process.env.GIFTRECON_DEMO_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'giftrecon-demo-'));
}
/** The demo's data folder; `token.txt` there holds an API token for the JSON API. */
export const DEMO_DIR = process.env.GIFTRECON_DEMO_DIR;
