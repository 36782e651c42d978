import { expect, test, type Page } from '@playwright/test';
import { E2E_PASSWORD, E2E_USER } from '../e2e-user';

/** Clicks do nothing until the WebAssembly has hydrated the page: wait for the app's marker. */
async function openHydrated(page: Page, path: string) {
  await page.goto(path);
  await expect(page.locator('[data-hydrated="true"]')).toBeAttached();
}

test.beforeEach(async ({ page }) => {
  await page.goto('/login');
  await page.getByLabel('Username').fill(E2E_USER);
  await page.getByLabel('Password').fill(E2E_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/$/);
});

const ROTATED_SECRET = 'whsec_e2e_rotated_secret_value';

test('an admin edits a status mapping, rotates a secret and sets the poll interval; the audit log shows each, chain intact', async ({
  page,
}) => {
  await openHydrated(page, '/vendors');
  await page.getByRole('rowheader', { name: 'acme' }).getByRole('link', { name: 'acme' }).click();
  await expect(page).toHaveURL(/\/vendors\?vendor=acme$/);
  const editor = page.getByRole('region', { name: 'Vendor acme' });
  await expect(editor).toBeVisible();
  // The webhook URL to give the vendor, on this server's own origin.
  const origin = new URL(page.url()).origin;
  await expect(editor.getByTestId('webhook-url')).toHaveText(`${origin}/webhooks/acme`);
  // The vendor file had a status the mapping does not know: listed, as text.
  const unmapped = editor.getByTestId('unmapped');
  await expect(unmapped.getByRole('rowheader', { name: '<img src=x onerror=alert(1)>' })).toBeVisible();
  await expect(unmapped.getByRole('button', { name: 'Map <img src=x onerror=alert(1)>' })).toBeVisible();

  // Edit the mapping: one more status.
  const mapping = editor.getByTestId('mapping');
  const before = await mapping.locator('tbody tr').count();
  await editor.getByRole('button', { name: 'Add status' }).click();
  const row = before + 1;
  await editor.getByLabel(`Vendor status, row ${row}`, { exact: true }).fill('on_hold');
  await editor.getByLabel(`GL state, row ${row}`, { exact: true }).selectOption('refunded');
  await editor.getByRole('button', { name: 'Save mapping' }).click();
  await expect(editor.getByRole('status').filter({ hasText: 'saved the status mapping of vendor acme' })).toBeVisible();
  // Reloaded from the server: the new status is stored, sorted among the others.
  await expect(mapping.locator('tbody tr')).toHaveCount(before + 1);
  const stored = await mapping
    .locator('tbody tr')
    .evaluateAll((rows) =>
      rows.map((r) => [(r.querySelector('input') as HTMLInputElement).value, (r.querySelector('select') as HTMLSelectElement).value]),
    );
  expect(stored).toContainEqual(['on_hold', 'refunded']);

  // Rotate the webhook secret: typed into a password field, never shown again.
  const secret = editor.getByLabel('New webhook secret');
  await expect(secret).toHaveAttribute('type', 'password');
  await secret.fill(ROTATED_SECRET);
  await editor.getByLabel('Overlap (hours)').fill('2');
  await editor.getByRole('button', { name: 'Rotate secret' }).click();
  await expect(editor.getByRole('status').filter({ hasText: 'added a webhook secret to vendor acme' })).toBeVisible();
  await expect(editor.getByTestId('secret-summary')).toContainText('1 active webhook secret.');
  await expect(secret).toHaveValue('');
  expect(await page.content()).not.toContain(ROTATED_SECRET);

  // Its own poll interval: a bad one is refused with the reason, a good one is stored.
  const interval = editor.getByLabel('Poll interval');
  await interval.fill('5');
  await editor.getByRole('button', { name: 'Save poll interval' }).click();
  await expect(editor.getByRole('alert').filter({ hasText: 'shorter than 10 seconds' })).toBeVisible();
  await interval.fill('5m');
  await editor.getByRole('button', { name: 'Save poll interval' }).click();
  await expect(editor.getByRole('status').filter({ hasText: 'vendor acme is now polled every 5 min' })).toBeVisible();
  await expect(editor.getByLabel('Poll interval')).toHaveValue('5 min');
  await page.screenshot({ path: test.info().outputPath('vendors.png'), fullPage: true });

  // The audit log: both changes, by this admin, and the chain intact.
  await page.getByRole('navigation', { name: 'Primary' }).getByRole('link', { name: 'Audit log' }).click();
  await expect(page).toHaveURL(/\/audit$/);
  await expect(page.getByTestId('chain-status')).toHaveText(/^Chain intact: \d+ rows$/);
  await page.getByLabel('Subject contains').fill('vendor:acme');
  await page.getByLabel('Actor').fill(E2E_USER);
  await page.getByRole('button', { name: 'Apply filters' }).click();
  const log = page.getByTestId('audit-log');
  await expect(log.getByRole('row').filter({ hasText: 'vendor_status_mapping' })).toHaveCount(1);
  await expect(log.getByRole('row').filter({ hasText: 'vendor_rotate_secret' })).toHaveCount(1);
  await expect(log.getByRole('row').filter({ hasText: 'vendor_poll_interval' })).toHaveCount(1);
  await expect(log.getByRole('row').filter({ hasText: 'vendor_status_mapping' })).toContainText('"on_hold":"refunded"');
  // Filtered on the server: the sign-in rows are not among them.
  await expect(log.getByRole('row').filter({ hasText: 'login' })).toHaveCount(0);
  expect(await page.content()).not.toContain(ROTATED_SECRET);
  await page.screenshot({ path: test.info().outputPath('audit-log.png'), fullPage: true });
});
