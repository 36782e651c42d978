/** The admin the end-to-end server is started with (`giftrecon user add e2e --role admin`). */
export const E2E_USER = 'e2e';
export const E2E_PASSWORD = 'e2e correct horse battery staple';
/** A finance preparer, for the queues (admins do not work them). */
export const E2E_FINANCE = 'e2e-finance';

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect, type Page } from '@playwright/test';

/** `giftrecon demo`'s users share one password. */
export const DEMO_PASSWORD = 'giftrecon-demo';

/** A `giftrecon demo` server the dashboard tests run against: one on SQLite, and one on
 *  PostgreSQL when GIFTRECON_E2E_PG names a server (scripts/test.sh sets it when one answers). */
export interface Demo {
  name: string;
  port: number;
  /** Its data folder; `token.txt` there holds an API token for the JSON API. */
  dir: string;
  database: string;
}

/** A folder chosen once by the runner: its workers inherit the environment, so they agree. */
function sharedDir(name: string): string {
  const key = `GIFTRECON_DEMO_DIR_${name.toUpperCase()}`;
  if (!process.env[key]) {
    process.env[key] = fs.mkdtempSync(path.join(os.tmpdir(), `giftrecon-demo-${name}-`));
  }
  return process.env[key]!;
}

export function demos(): Demo[] {
  const port = Number(process.env.GIFTRECON_DEMO_PORT ?? 3108);
  const list: Demo[] = [
    { name: 'sqlite', port, dir: sharedDir('sqlite'), database: 'sqlite://giftrecon-demo.db' },
  ];
  const pg = process.env.GIFTRECON_E2E_PG;
  if (pg) {
    list.push({ name: 'postgres', port: port + 1, dir: sharedDir('postgres'), database: `${pg.replace(/\/$/, '')}/giftrecon_e2e_demo` });
  }
  return list;
}

/**
 * Where the fixtures server's start-up leaves an API token (`giftrecon token create`), so tests
 * can compare what the dashboard shows with what the JSON API says.
 */
export const E2E_TOKEN_FILE = path.join(os.tmpdir(), `giftrecon-e2e-token-${process.env.GIFTRECON_E2E_PORT ?? 3107}`);

/** Clicks do nothing until the WebAssembly has hydrated the page: wait for the app's marker. */
export async function openHydrated(page: Page, where: string) {
  await page.goto(where);
  await expect(page.locator('[data-hydrated="true"]')).toBeAttached();
}

/** Signs in through the form as a person would. */
export async function signIn(page: Page, username: string, password: string = E2E_PASSWORD) {
  await page.goto('/login');
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
}
