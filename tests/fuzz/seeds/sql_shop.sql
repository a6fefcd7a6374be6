-- Queries against the demo shop (`explainer demo --keep` prints its DSN), to try with
--   explainer analyze --dsn DSN --sql sample_queries/shop.sql
-- Statements are split on semicolons outside quotes, dollar quotes and comments.

-- A customer's latest orders: no index on orders.customer_id.
SELECT id, status, created_at, total
FROM orders
WHERE customer_id = 4242
ORDER BY created_at DESC
LIMIT 20;

-- Log-in by e-mail: no index on customers.email.
SELECT id, name FROM customers WHERE email = 'noah.baker25903@outlook.com';

-- Served by the unique index on products.sku already: no suggestion.
SELECT id, name, price FROM products WHERE sku = 'SKU-000042';

-- 10% of the orders are not 'delivered': an index would not help a query that keeps
-- this many rows, and explainer suggests none.
SELECT status, count(*) FROM orders WHERE status <> 'delivered' GROUP BY status;

-- A write: only estimated unless --analyze-writes (and then rolled back).
UPDATE orders SET total = total WHERE customer_id = 4242;
