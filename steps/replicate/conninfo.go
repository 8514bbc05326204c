package replicate

import (
	"errors"

	"github.com/planrun/planrun/internal/pgkit"
	"github.com/planrun/planrun/internal/redact"
)

// conninfo is the connection string the target server uses to reach the
// source: source_conninfo, or the source's own connection string, whole
// (libpq on the target reads every parameter the user wrote, TLS files
// included). Its secrets are registered.
func (r *replication) conninfo() (string, error) {
	conn := r.a.SourceConninfo
	if conn == "" {
		if _, err := pgkit.ConnConfig(r.env, r.a.Source, false); err != nil {
			return "", err
		}
		conn = r.a.Source.URL
	}
	if r.env != nil && r.env.Secrets != nil {
		r.env.Secrets(pgkit.ConnSecrets(conn)...)
	}
	return conn, nil
}

// redactErr keeps a connection string's secrets out of an error's
// message. An error that does not quote them is returned as it is, cause
// and all.
func redactErr(err error, conninfo string) error {
	msg := err.Error()
	changed := redact.New(pgkit.ConnSecrets(conninfo)...).String(msg)
	if changed == msg {
		return err
	}
	return errors.New(changed)
}
