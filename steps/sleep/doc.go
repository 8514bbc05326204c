// Package sleep is the sleep step type: it waits for a duration, or until
// the run is cancelled. It does nothing else.
package sleep
