import { defineConfig } from '@playwright/test';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { demos, E2E_FINANCE, E2E_PASSWORD, E2E_TOKEN_FILE, E2E_USER } from './e2e-user';

// The server under test: the binary cargo-leptos built, with its site beside it in target/site.
const binary = process.env.GIFTRECON_BIN ?? path.resolve(__dirname, '../target/debug/giftrecon');
const port = Number(process.env.GIFTRECON_E2E_PORT ?? 3107);
// A fresh data folder per run, as an operator would start giftrecon in their own folder.
const dataDir = process.env.GIFTRECON_E2E_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'giftrecon-e2e-'));
// A reconciled day with two discrepancies, made as finance would: import both files, reconcile.
const fixtures = path.resolve(__dirname, 'fixtures');

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report' }]],
  outputDir: 'test-results',
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    screenshot: 'on',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
  projects: [
    { name: 'fixtures', testIgnore: /dashboard\.spec\.ts/ },
    ...demos().map((demo) => ({
      name: `demo-${demo.name}`,
      testMatch: /dashboard\.spec\.ts/,
      use: { baseURL: `http://127.0.0.1:${demo.port}` },
      metadata: { tokenFile: path.join(demo.dir, 'token.txt'), database: demo.name },
    })),
  ],
  webServer: [{
    // The default SQLite file in a fresh folder, whatever the caller's environment says, with
    // the one admin the tests sign in as (created as an operator would: `user add`).
    command:
      `env -u DATABASE_URL -u GIFTRECON_CONFIG -u GIFTRECON_ADDR sh -c '` +
      // (a reused GIFTRECON_E2E_DIR already has the user: then adding it fails harmlessly)
      `{ printf "%s\\n" "$E2E_PASSWORD" | "${binary}" user add ${E2E_USER} --role admin --password-stdin || true; } && ` +
      `{ printf "%s\\n" "$E2E_PASSWORD" | "${binary}" user add ${E2E_FINANCE} --role finance_preparer --password-stdin || true; } && ` +
      `{ "${binary}" vendor add acme && "${binary}" import orders "${fixtures}/orders.csv" --vendor acme && ` +
      `"${binary}" import vendor "${fixtures}/vendor.csv" --vendor acme && ` +
      `"${binary}" reconcile --vendor acme --date 2026-12-01 || true; } >/dev/null && ` +
      // An API token for comparing the dashboard with the API (a reused folder keeps the old one).
      `{ "${binary}" token create --name e2e-reports > "${E2E_TOKEN_FILE}.new" && mv "${E2E_TOKEN_FILE}.new" "${E2E_TOKEN_FILE}" || true; } && ` +
      `exec "${binary}" serve --addr 127.0.0.1:${port}'`,
    cwd: dataDir,
    env: { RUST_LOG: 'warn', E2E_PASSWORD: E2E_PASSWORD },
    url: `http://127.0.0.1:${port}/readyz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'ignore',
    stderr: 'pipe',
  },
  // The demo anyone can open, as the README starts it, with an API token for the JSON API; on
  // PostgreSQL in a database made afresh for the run.
  ...demos().map((demo) => ({
    command:
      `env -u DATABASE_URL -u GIFTRECON_CONFIG -u GIFTRECON_ADDR sh -c '` +
      (demo.database.startsWith('postgres')
        ? `PGOPTIONS="-c client_min_messages=warning" psql -q "${demo.database.replace(/\/[^/]*$/, '/postgres')}" -c "DROP DATABASE IF EXISTS giftrecon_e2e_demo WITH (FORCE)" -c "CREATE DATABASE giftrecon_e2e_demo" && `
        : '') +
      `DATABASE_URL=${demo.database} "${binary}" token create --name e2e > token.txt && ` +
      `exec "${binary}" demo --days 2 --database ${demo.database} --addr 127.0.0.1:${demo.port}'`,
    cwd: demo.dir,
    env: { RUST_LOG: 'warn' },
    url: `http://127.0.0.1:${demo.port}/readyz`,
    reuseExistingServer: false,
    timeout: 120_000,
    stdout: 'ignore' as const,
    stderr: 'pipe' as const,
  })),
  ],
});
