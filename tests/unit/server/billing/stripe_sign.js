// Signs webhook payloads with Stripe's own library, as Stripe signs the
// deliveries it sends: reads a JSON list of {payload, secret, timestamp}
// on stdin and prints the list of Stripe-Signature headers that
// stripe.webhooks.generateTestHeaderString makes for them.
// Usage: node stripe_sign.js <node_modules dir>
'use strict';
const path = require('path');
const Stripe = require(path.join(process.argv[2], 'stripe'));
const stripe = Stripe('sk_test_unused');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const headers = cases.map((c) =>
  stripe.webhooks.generateTestHeaderString({
    payload: c.payload,
    secret: c.secret,
    timestamp: c.timestamp,
  })
);
process.stdout.write(JSON.stringify(headers));
