// Package http is the http step type: it sends one request (a JSON body
// encoded from HCL or YAML, or a string) and captures the status, headers
// and body.
//
// A request is sent once unless retry_on names statuses that mean "try
// again" (a platform API's [429, 500, 502, 503, 504]): then those statuses,
// and a request that got no response at all, are retried inside the step,
// up to retry_attempts, with a doubling wait (a Retry-After header is
// honoured). That is separate from the step's retry block, which the engine
// applies to any failure; a 4xx that is not in retry_on fails at once, with
// the "message" of a JSON error body, and counts as a refusal (the server
// did nothing, so the step's rollback does not run).
package http
