-- Deterministic data: the same scale gives the same rows, so checksums can
-- be compared across runs. The template fields are row counts (Size).
INSERT INTO app.customers (email, name, country, created_at, profile, tags, avatar, deleted_at)
SELECT 'user' || i || '@example.' || (ARRAY['com', 'org', 'net'])[1 + i % 3],
       'Customer ' || i,
       CASE WHEN i % 17 = 0 THEN NULL ELSE (ARRAY['US', 'DE', 'FR', 'JP', 'BR', 'IN'])[1 + i % 6] END,
       timestamptz '2024-01-01 00:00:00+00' + (i * interval '37 minutes'),
       CASE WHEN i % 5 = 0 THEN NULL ELSE jsonb_build_object('plan', (ARRAY['free', 'pro', 'team'])[1 + i % 3], 'newsletter', i % 2 = 0, 'score', (i % 1000) / 10.0) END,
       CASE WHEN i % 4 = 0 THEN NULL ELSE ARRAY['tag' || (i % 7), 'tag' || (i % 11)] END,
       CASE WHEN i % 9 = 0 THEN decode(md5(i::text), 'hex') ELSE NULL END,
       CASE WHEN i % 23 = 0 THEN timestamptz '2026-01-01 00:00:00+00' + (i * interval '1 minute') ELSE NULL END
FROM generate_series(1, {{.Customers}}) AS i;

INSERT INTO app.products (sku, title, price, attributes, weight_kg, ratings, discontinued)
SELECT 'SKU-' || lpad(i::text, 6, '0'),
       'Product ' || i || ' ' || md5(i::text),
       ((i * 7919) % 100000) / 100.0,
       jsonb_build_object('color', (ARRAY['red', 'green', 'blue', NULL])[1 + i % 4], 'sizes', jsonb_build_array(i % 3, i % 5)),
       CASE WHEN i % 13 = 0 THEN NULL ELSE (i % 500) / 7.0 END,
       ARRAY[(i % 5) + 0.5, (i % 3) + 0.25],
       i % 31 = 0
FROM generate_series(1, {{.Products}}) AS i;

INSERT INTO app.orders (customer_id, status, total, placed_at, ship_by, handling, notes, shipping)
SELECT 1 + (i * 7) % {{.Customers}},
       (ARRAY['pending', 'paid', 'shipped', 'cancelled', 'refunded'])[1 + i % 5]::app.order_status,
       CASE WHEN i % 41 = 0 THEN NULL ELSE ((i::bigint * 104729) % 5000000) / 100.0 END,
       timestamptz '2025-01-01 00:00:00+00' + (i * interval '9 minutes 17 seconds'),
       date '2025-01-03' + (i % 700),
       CASE WHEN i % 3 = 0 THEN NULL ELSE make_interval(hours => i % 72, mins => i % 60) END,
       CASE WHEN i % 6 = 0 THEN 'Leave at the door; ring ' || (i % 4) || ' times' ELSE NULL END,
       jsonb_build_object('method', (ARRAY['post', 'courier', 'pickup'])[1 + i % 3], 'tracking', md5('t' || i))
FROM generate_series(1, {{.Orders}}) AS i;

INSERT INTO app.order_items (order_id, line, product_id, quantity, unit_price)
SELECT o, l, 1 + (o::bigint * 31 + l * 17) % {{.Products}}, 1 + (o + l) % 4, ((o::bigint * 13 + l) % 20000) / 100.0
FROM generate_series(1, {{.Orders}}) AS o, generate_series(1, {{.ItemsPerOrder}}) AS l
WHERE (o + l) % 3 <> 0 OR l = 1;

INSERT INTO app.sessions (token, customer_id, expires_at, data)
SELECT md5('session' || i)::uuid, 1 + i % {{.Customers}}, timestamptz '2026-12-01 00:00:00+00' + (i * interval '1 second'),
       CASE WHEN i % 2 = 0 THEN jsonb_build_object('ip', '10.0.' || (i % 256) || '.' || (i % 200)) ELSE NULL END
FROM generate_series(1, {{.Sessions}}) AS i;

INSERT INTO billing.invoices (order_id, number, issued_on, amount, pdf, paid)
SELECT o, 'INV-' || nextval('billing.invoice_number_seq'), date '2025-01-02' + (o % 650),
       ((o::bigint * 104729) % 5000000) / 100.0,
       CASE WHEN o % 50 = 0 THEN decode(repeat(md5(o::text), 4), 'hex') ELSE NULL END,
       CASE WHEN o % 10 = 0 THEN NULL ELSE o % 3 <> 0 END
FROM generate_series(1, {{.Orders}}, 2) AS o;

INSERT INTO billing.contracts (customer_id, document)
SELECT i, lo_from_bytea(0, convert_to('Contract for customer ' || i || E'\n' || repeat('Terms and conditions. ', 20), 'UTF8'))
FROM generate_series(1, {{.Contracts}}) AS i;

INSERT INTO audit.events (at, actor, action, payload)
SELECT timestamptz '2025-01-01 00:00:00+00' + (i * interval '20 minutes 59 seconds'),
       CASE WHEN i % 8 = 0 THEN NULL ELSE 'user' || (i % 500) END,
       (ARRAY['login', 'logout', 'order.create', 'order.pay', 'profile.update'])[1 + i % 5],
       jsonb_build_object('n', i, 'ok', i % 19 <> 0)
FROM generate_series(1, {{.Events}}) AS i;

REFRESH MATERIALIZED VIEW billing.monthly_revenue;
ANALYZE;
