import * as fs from 'node:fs';
import { expect, test } from '@playwright/test';
import { E2E_FINANCE, E2E_TOKEN_FILE, openHydrated, signIn } from '../e2e-user';

test.beforeEach(async ({ page }) => {
  await signIn(page, E2E_FINANCE);
});

// A later day than the reconciled one, so the queues the other specs use do not change.
const VENDOR_FILE = [
  'vendor_order_id,idempotency_key,amount,currency,status,created_at',
  'E2E-1,k-upload-1,12.34,USD,fulfilled,2026-12-03T10:00:00Z',
  'E2E-2,k-upload-2,5000,JPY,completed,2026-12-03T11:00:00Z',
].join('\n');

test('finance uploads a vendor file and sees what it did, then a bad one and why', async ({ page }) => {
  await openHydrated(page, '/imports');
  const name = `e2e-vendor-${Date.now()}.csv`;
  await page.getByLabel('File kind').selectOption('vendor');
  await page.getByLabel('Vendor', { exact: true }).selectOption('acme');
  await page.getByLabel('File', { exact: true }).setInputFiles({
    name,
    mimeType: 'text/csv',
    buffer: Buffer.from(VENDOR_FILE),
  });
  await page.getByRole('button', { name: 'Upload' }).click();
  const result = page.getByTestId('upload-result');
  await expect(result).toContainText(`imported ${name} for vendor acme`);
  await expect(page.getByTestId('upload-rows')).toHaveText('2');
  // The import log below refreshed with the new file, by whoever uploaded it.
  const newest = page.getByTestId('imports').locator('tbody tr').first();
  await expect(newest).toContainText(name);
  await expect(newest).toContainText(E2E_FINANCE);

  // A file with a bad line: nothing stored, the line named with its reason.
  await page.getByLabel('File', { exact: true }).setInputFiles({
    name: 'bad.csv',
    mimeType: 'text/csv',
    buffer: Buffer.from(`${VENDOR_FILE}\nE2E-3,k-upload-3,12.345,USD,fulfilled,2026-12-03T12:00:00Z`),
  });
  await page.getByRole('button', { name: 'Upload' }).click();
  await expect(result).toContainText('Nothing was imported.');
  await expect(page.getByTestId('rejected-lines')).toContainText('Line 4: amount');
  await expect(page.getByTestId('imports').locator('tbody tr').first()).toContainText(name);
});

test('the queue exports exactly what the API reports, as CSV', async ({ page, request }) => {
  await openHydrated(page, '/discrepancies');
  await page.getByLabel('Vendor').fill('acme');
  await page.getByLabel('Vendor').press('Tab');
  await page.getByLabel('Status').selectOption('all');
  const link = page.getByRole('link', { name: 'Export CSV' });
  await expect(link).toHaveAttribute('href', '/export/discrepancies.csv?vendor=acme&state=all');
  await expect(page.getByRole('link', { name: 'Export XLSX' })).toHaveAttribute(
    'href',
    '/export/discrepancies.xlsx?vendor=acme&state=all',
  );

  const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
  expect(download.suggestedFilename()).toMatch(/^giftrecon-discrepancies-acme-all-\d{8}T\d{6}Z\.csv$/);
  const exported = fs.readFileSync(await download.path(), 'utf8');

  const token = fs.readFileSync(E2E_TOKEN_FILE, 'utf8').trim();
  const api = await request.get('/api/v1/reconciliation/discrepancies?vendor=acme&date=2026-12-01&format=csv', {
    headers: { Authorization: `Bearer ${token}` },
  });
  expect(api.status()).toBe(200);
  expect(exported).toBe(await api.text());
  // And it ties to the API's JSON: one line per item, and the control line counts them.
  const items = await (
    await request.get('/api/v1/reconciliation/discrepancies?vendor=acme&date=2026-12-01', {
      headers: { Authorization: `Bearer ${token}` },
    })
  ).json();
  const lines = exported.trimEnd().split('\n');
  expect(lines.length).toBe(items.length + 2);
  expect(lines[lines.length - 1]).toMatch(new RegExp(`^# control: ${items.length} discrepancies`));
});
