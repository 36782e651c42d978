import { expect, test, type Page } from '@playwright/test';
import { E2E_PASSWORD, E2E_USER } from '../e2e-user';

const NAVIGATION = ['Overview', 'Discrepancies', 'Daily close', 'Orders', 'Imports', 'Vendors', 'Audit log'];

/** Clicks do nothing until the WebAssembly has hydrated the page: wait for the app's marker. */
async function openHydrated(page: Page, path: string) {
  await page.goto(path);
  await expect(page.locator('[data-hydrated="true"]')).toBeAttached();
}

/** Every page needs a session: sign in through the form as a person would. */
test.beforeEach(async ({ page }) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/login$/);
  await page.getByLabel('Username').fill(E2E_USER);
  await page.getByLabel('Password').fill(E2E_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
});

test('the shell is server-rendered with every page in the navigation', async ({ page }) => {
  await openHydrated(page, '/');
  await expect(page).toHaveTitle('Overview · giftrecon');
  const nav = page.getByRole('navigation', { name: 'Primary' });
  for (const label of NAVIGATION) {
    await expect(nav.getByRole('link', { name: label, exact: true })).toBeVisible();
  }
  await expect(nav.getByRole('link', { name: 'Overview' })).toHaveAttribute('aria-current', 'page');
  await expect(page.getByTestId('database')).toHaveText('SQLite');
});

test('a click is handled by the WebAssembly: the navigation toggles', async ({ page }) => {
  await openHydrated(page, '/');
  const nav = page.getByRole('navigation', { name: 'Primary' });
  const hide = page.getByRole('button', { name: 'Hide navigation' });
  await expect(hide).toHaveAttribute('aria-expanded', 'true');
  await hide.click();
  const show = page.getByRole('button', { name: 'Show navigation' });
  await expect(show).toHaveAttribute('aria-expanded', 'false');
  await expect(nav).toBeHidden();
  await show.click();
  await expect(nav).toBeVisible();
});

test('navigating between pages happens in the browser without a reload', async ({ page }) => {
  await openHydrated(page, '/');
  await page.evaluate(() => ((window as unknown as { marker: string }).marker = 'still here'));
  await page.getByRole('navigation', { name: 'Primary' }).getByRole('link', { name: 'Vendors' }).click();
  await expect(page).toHaveURL(/\/vendors$/);
  await expect(page.getByRole('heading', { level: 1, name: 'Vendors' })).toBeVisible();
  // The vendor the test server's data folder was seeded with, loaded by a server function.
  await expect(page.getByRole('rowheader', { name: 'acme' })).toBeVisible();
  const marker = await page.evaluate(() => (window as unknown as { marker?: string }).marker);
  expect(marker).toBe('still here');
});

test('the page hydrates under the Content-Security-Policy without violations', async ({ page }) => {
  const violations: string[] = [];
  page.on('console', (message) => {
    if (message.text().includes('Content Security Policy')) violations.push(message.text());
  });
  await openHydrated(page, '/vendors');
  await expect(page.getByRole('heading', { level: 1, name: 'Vendors' })).toBeVisible();
  expect(violations).toEqual([]);
});

test('signing out ends the session: pages send you back to sign in', async ({ page }) => {
  await openHydrated(page, '/');
  await expect(page.getByTestId('whoami')).toContainText(E2E_USER);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto('/vendors');
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole('button', { name: 'Sign in' })).toBeVisible();
});

test('an admin adds a user from the Users page (a state-changing server function)', async ({ page }) => {
  await openHydrated(page, '/users');
  const name = `sam${Date.now()}`;
  await page.getByLabel('Username').fill(name);
  await page.getByLabel('Role').selectOption('support');
  await page.getByLabel('Password (at least 12 characters)').fill('sam has a long password');
  await page.getByRole('button', { name: 'Add user' }).click();
  const row = page.getByRole('row', { name: new RegExp(name) });
  await expect(row).toContainText('Support');
  await expect(row).toContainText('active');
});
