//! Webhook signature schemes, verified over the exact raw body in constant time.
