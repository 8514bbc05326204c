// Package pgtest starts throwaway PostgreSQL servers for tests and for the
// `planrun demo` command. The servers are real (initdb + postgres, password
// authentication enforced), listen on 127.0.0.1 only, and are tuned for speed
// rather than durability. It deliberately does not import "testing" so that
// non-test binaries can link it.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SuperUser is the name of the superuser created by initdb in every server.
const SuperUser = "postgres"

// ReadyTimeout bounds how long Start waits for a launched server to accept
// connections (the caller's context may cut it shorter).
const ReadyTimeout = 30 * time.Second

// dirPrefix names the temporary directories; `pgrep -f planrun-pg` finds
// postmasters because their -D argument contains it.
const dirPrefix = "planrun-pg-"

// defaultSettings trade durability for speed (the data is thrown away) and
// enable logical replication, which later features test against.
var defaultSettings = map[string]string{
	"listen_addresses":        "127.0.0.1",
	"unix_socket_directories": "", // TCP only: no socket path-length or permission trouble
	"fsync":                   "off",
	"synchronous_commit":      "off",
	"full_page_writes":        "off",
	"shared_buffers":          "128MB",
	"max_connections":         "200",
	"wal_level":               "logical",
	"max_wal_senders":         "10",
	"max_replication_slots":   "10",
}

// Options configures Start. The zero value is ready to use.
type Options struct {
	// BinDir holds initdb and postgres; "" means FindBinDir().
	BinDir string
	// Password for the superuser; "" means a random one.
	Password string
	// Settings are extra server settings (as with postgres -c); they
	// override the package defaults.
	Settings map[string]string
	// Log, if set, receives a copy of the server log.
	Log io.Writer
	// Files are written into the data directory before the server starts,
	// readable by the server's user only (as PostgreSQL wants a key file):
	// server.crt and server.key for ssl = on, say.
	Files map[string][]byte

	// pickPort overrides free-port selection; tests use it to force a clash.
	pickPort func() (int, error)
}

// Server is a running throwaway PostgreSQL server. Stop it when done.
type Server struct {
	Host     string // always 127.0.0.1
	Port     int    // TCP port on Host
	User     string // superuser name (SuperUser)
	Password string // superuser password
	DataDir  string // PGDATA; removed by Stop
	BinDir   string // directory holding the server binaries used

	root string              // temp dir containing DataDir; removed by Stop
	cred *syscall.Credential // nil: run children as ourselves
	log  *tailWriter

	mu   sync.Mutex
	proc *postmaster // current postmaster, nil before launch

	stopOnce sync.Once
	stopErr  error
	stopped  chan struct{} // closed when Stop has begun
}

// postmaster is one launched postgres process.
type postmaster struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait returned
	err  error         // cmd.Wait result, valid after done
}

// errPortInUse marks a launch that failed because the port was taken
// between choosing it and binding it; Start retries with another port.
var errPortInUse = errors.New("port already in use")

// Start creates a new cluster with initdb, launches postgres on a free
// loopback port and waits until it accepts connections. ctx bounds only the
// startup, not the server's lifetime. On failure nothing is left behind and
// the error includes the tail of the server log.
func Start(ctx context.Context, opts Options) (*Server, error) {
	binDir := opts.BinDir
	if binDir == "" {
		var err error
		if binDir, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	if !hasServerBinaries(binDir) {
		return nil, fmt.Errorf("%s does not contain %s", binDir, strings.Join(serverBinaries, ", "))
	}
	password := opts.Password
	if password == "" {
		var err error
		if password, err = randomHex(16); err != nil {
			return nil, fmt.Errorf("generate password: %w", err)
		}
	}
	if strings.ContainsAny(password, "\r\n") {
		return nil, errors.New("password must not contain line breaks") // initdb --pwfile reads one line
	}
	conf, err := settingsConf(opts.Settings)
	if err != nil {
		return nil, err
	}
	cred, err := childCredential()
	if err != nil {
		return nil, err
	}
	root, err := makeRoot(cred)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Host:     "127.0.0.1",
		User:     SuperUser,
		Password: password,
		DataDir:  filepath.Join(root, "data"),
		BinDir:   binDir,
		root:     root,
		cred:     cred,
		log:      &tailWriter{sink: opts.Log, max: 16 << 10},
		stopped:  make(chan struct{}),
	}
	if err := s.initdb(ctx, conf); err != nil {
		_ = s.Stop()
		return nil, err
	}
	for name, data := range opts.Files {
		path := filepath.Join(s.DataDir, filepath.Base(name))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			_ = s.Stop()
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
		if err := s.chown(path); err != nil {
			_ = s.Stop()
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	pickPort := opts.pickPort
	if pickPort == nil {
		pickPort = freePort
	}
	const attempts = 5
	for i := 1; ; i++ {
		port, err := pickPort()
		if err != nil {
			_ = s.Stop()
			return nil, fmt.Errorf("pick port: %w", err)
		}
		err = s.launch(ctx, port)
		if err == nil {
			return s, nil
		}
		s.kill()
		if errors.Is(err, errPortInUse) && i < attempts && ctx.Err() == nil {
			continue
		}
		_ = s.Stop()
		return nil, fmt.Errorf("start postgres: %w%s", err, s.logSuffix())
	}
}

// StartPair starts two independent servers concurrently (e.g. a migration
// source and target). If either fails, both are stopped.
func StartPair(ctx context.Context, opts Options) (source, target *Server, err error) {
	servers, err := startMany(ctx, opts, 2)
	if err != nil {
		return nil, nil, err
	}
	return servers[0], servers[1], nil
}

// startMany starts n servers concurrently; all or none are returned running.
func startMany(ctx context.Context, opts Options, n int) ([]*Server, error) {
	servers := make([]*Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = Start(ctx, opts)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("server %d: %w", i+1, errs[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, s := range servers {
			if s != nil {
				_ = s.Stop()
			}
		}
		return nil, err
	}
	return servers, nil
}

// URL returns a connection URL for database dbname as the superuser.
func (s *Server) URL(dbname string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(s.User, s.Password),
		Host:     net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
		Path:     "/" + dbname,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Connect opens a pgx connection to database dbname as the superuser.
func (s *Server) Connect(ctx context.Context, dbname string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, s.URL(dbname))
	if err != nil {
		return nil, fmt.Errorf("connect to %s on port %d: %w", dbname, s.Port, err)
	}
	return conn, nil
}

// CreateDatabase creates database name and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context, name string) (string, error) {
	if err := s.admin(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.URL(name), nil
}

// DropDatabase drops database name if it exists, terminating any sessions
// still connected to it (WITH (FORCE)).
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	if err := s.admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// admin runs one statement in the maintenance database "postgres".
func (s *Server) admin(ctx context.Context, sql string) error {
	conn, err := s.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

// LogTail returns the last part of the server log, for diagnosing failures.
func (s *Server) LogTail() string { return s.log.String() }

// Stop shuts the server down (immediate mode: the data is discarded anyway)
// and removes its data directory. It is idempotent and safe to call
// concurrently; later calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		close(s.stopped)
		s.kill()
		if err := os.RemoveAll(s.root); err != nil {
			s.stopErr = fmt.Errorf("remove %s: %w", s.root, err)
		}
	})
	return s.stopErr
}

// isStopped reports whether Stop has been called.
func (s *Server) isStopped() bool {
	select {
	case <-s.stopped:
		return true
	default:
		return false
	}
}

// kill stops the current postmaster, if any, and waits for it to exit.
func (s *Server) kill() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	// SIGQUIT = immediate shutdown: the postmaster kills its children and
	// exits without a checkpoint, which is all we need for a throwaway.
	_ = p.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-p.done:
		return
	case <-time.After(10 * time.Second):
	}
	// Still alive: kill the whole process group (Setpgid made it ours).
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// initdb creates the cluster with real password authentication and appends
// our settings to postgresql.conf.
func (s *Server) initdb(ctx context.Context, conf string) error {
	pwfile := filepath.Join(s.root, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return fmt.Errorf("initdb: write password file: %w", err)
	}
	if err := s.chown(pwfile); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.BinDir, "initdb"),
		"-D", s.DataDir,
		"-U", s.User,
		"--auth=scram-sha-256", "--pwfile="+pwfile,
		"-E", "UTF8", "--locale=C",
		"--no-sync", // durability is pointless for a throwaway cluster; saves ~1s
	)
	s.prepare(cmd)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if out := strings.TrimSpace(string(out)); out != "" {
			return fmt.Errorf("initdb: %w\n%s", err, out)
		}
		return fmt.Errorf("initdb: %w", err)
	}
	if err := os.Remove(pwfile); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	// Appending keeps initdb's own choices; later lines win in postgresql.conf.
	f, err := os.OpenFile(filepath.Join(s.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("initdb: configure: %w", err)
	}
	_, werr := f.WriteString(conf)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("initdb: configure: %w", err)
	}
	return nil
}

// launch starts postgres on port and waits until it accepts connections.
func (s *Server) launch(ctx context.Context, port int) error {
	cmd := exec.Command(filepath.Join(s.BinDir, "postgres"), "-D", s.DataDir, "-p", strconv.Itoa(port))
	s.prepare(cmd)
	// Own process group: a terminal ^C reaches only us, and Main decides
	// how to shut down. Pdeathsig: if this process dies without calling
	// Stop (test panic, timeout, kill -9), the kernel tells the postmaster to
	// shut down immediately, so no server outlives us.
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	cmd.Stdout = s.log
	cmd.Stderr = s.log
	// Backends inherit the log pipe; bound the wait if one lingers.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("run postgres: %w", err)
	}
	p := &postmaster{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.mu.Lock()
	s.proc = p
	s.Port = port
	s.mu.Unlock()

	// Cancel the readiness wait as soon as the postmaster exits, so a
	// connect attempt stuck on whatever else holds the port returns at once.
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	defer watcher.Wait()
	defer cancel()

	exited := func() error {
		err := fmt.Errorf("postgres exited during startup: %v", p.err)
		if portClash.MatchString(s.log.String()) {
			return fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return err
	}
	for {
		attemptCtx, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(attemptCtx, s.URL("postgres"))
		cancelAttempt()
		if err == nil {
			return conn.Close(ctx)
		}
		// Checked first: the watcher cancels ctx only after p.done is closed.
		select {
		case <-p.done:
			return exited()
		default:
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "28") {
			// Authentication failures won't go away by waiting.
			return fmt.Errorf("connect: %w", err)
		}
		select {
		case <-ctx.Done():
			select {
			case <-p.done: // ctx was cancelled by the watcher
				return exited()
			default:
			}
			return fmt.Errorf("postgres not accepting connections on port %d: %w (last error: %v)", port, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// portClash matches the log lines of a postmaster that could not bind.
var portClash = regexp.MustCompile(`could not bind|Address already in use|could not create any TCP/IP sockets`)

// prepare sets up a child process: run as the postgres user when we are
// root (initdb/postgres refuse to run as root), in a directory it can
// access, with an environment that cannot redirect it elsewhere.
func (s *Server) prepare(cmd *exec.Cmd) {
	cmd.Dir = s.root // our cwd may be unreadable for the postgres user
	cmd.Env = childEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
}

func (s *Server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	return os.Chown(path, int(s.cred.Uid), int(s.cred.Gid))
}

// logSuffix formats the log tail for inclusion in an error.
func (s *Server) logSuffix() string {
	tail := strings.TrimSpace(s.log.String())
	if tail == "" {
		return ""
	}
	return "\nserver log (tail):\n" + tail
}

// settingsConf renders defaults plus overrides as postgresql.conf lines.
func settingsConf(extra map[string]string) (string, error) {
	all := make(map[string]string, len(defaultSettings)+len(extra))
	for k, v := range defaultSettings {
		all[k] = v
	}
	for k, v := range extra {
		if !settingName.MatchString(k) {
			return "", fmt.Errorf("invalid setting name %q", k)
		}
		if strings.ContainsAny(v, "\r\n") {
			return "", fmt.Errorf("setting %s: value must not contain line breaks", k)
		}
		all[k] = v
	}
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("\n# added by planrun internal/pgtest\n")
	for _, k := range names {
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(all[k], "'", "''"))
	}
	return b.String(), nil
}

var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// freePort asks the kernel for an unused loopback port. Another process
// may grab it before postgres binds; Start retries in that case.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// tailWriter keeps the last max bytes written and copies everything to an
// optional writer. Errors from the copy are ignored: a broken log sink must
// not stop the server (the postmaster would get SIGPIPE-like failures).
type tailWriter struct {
	mu   sync.Mutex
	buf  []byte
	max  int
	sink io.Writer
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	if w.sink != nil {
		_, _ = w.sink.Write(p)
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
