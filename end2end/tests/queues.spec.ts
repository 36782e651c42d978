import { expect, test, type Page } from '@playwright/test';
import { E2E_FINANCE, E2E_PASSWORD } from '../e2e-user';

async function openHydrated(page: Page, path: string) {
  await page.goto(path);
  await expect(page.locator('[data-hydrated="true"]')).toBeAttached();
}

test.beforeEach(async ({ page }) => {
  await page.goto('/login');
  await page.getByLabel('Username').fill(E2E_FINANCE);
  await page.getByLabel('Password').fill(E2E_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('button', { name: 'Sign out' })).toBeVisible();
});

test('finance resolves a discrepancy from the queue, with a reason', async ({ page }) => {
  await openHydrated(page, '/discrepancies');
  const queue = page.getByTestId('queue');
  const rows = queue.locator('tbody tr');
  await expect(rows).toHaveCount(2);
  // Both sides, the differing amount marked; vendor text shown as text, never run.
  const amount = queue.locator('tr[data-class="amount_mismatch"]');
  await expect(amount.locator('.differs')).toHaveText(['25.00', '25.01']);
  await expect(queue.locator('tr[data-class="vendor_only"]')).toContainText('<img src=x onerror=alert(1)>');
  await amount.getByLabel('How it was resolved').fill('credit note CN-7 expected');
  await amount.getByRole('button', { name: 'Resolve' }).click();
  await expect(rows).toHaveCount(1);
  await page.getByLabel('Status').selectOption('resolved');
  await expect(rows).toHaveCount(1);
  await expect(queue).toContainText('credit note CN-7 expected');
  await expect(queue).toContainText('by e2e-finance');
});

test('support finds an order by its key and reads its history', async ({ page }) => {
  await openHydrated(page, '/orders');
  await page.getByLabel('Search').fill('k-amount');
  await page.getByRole('button', { name: 'Find' }).click();
  await expect(page.getByTestId('orders').locator('tbody tr')).toHaveCount(1);
  const timeline = page.getByTestId('timeline');
  await expect(timeline).toContainText('created');
  await expect(timeline).toContainText('reconciliation: amount mismatch');
});
