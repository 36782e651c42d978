/** The admin the end-to-end server is started with (`giftrecon user add e2e --role admin`). */
export const E2E_USER = 'e2e';
export const E2E_PASSWORD = 'e2e correct horse battery staple';
/** A finance preparer, for the queues (admins do not work them). */
export const E2E_FINANCE = 'e2e-finance';
