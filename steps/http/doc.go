// Package http is the http step type: it sends one request (a JSON body
// encoded from HCL or YAML, or a string) and captures the status, headers
// and body. It sends each request once: retries and timeouts are the
// step's settings, which the engine applies.
package http
