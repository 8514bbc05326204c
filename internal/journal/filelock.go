package journal

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// DefaultFileLockCheck is how often a held file lock checks that its
// directory is still the one at its path.
const DefaultFileLockCheck = 100 * time.Millisecond

// Open file description locks (Linux 3.15+); package syscall lacks their names.
const (
	fOFDGetlk = 36
	fOFDSetlk = 37
)

// Lock takes the plan's lock, three ways at once:
//
//   - an exclusive flock on the plan's directory DIR/PLAN itself, held
//     through an open descriptor: deleting the lock file beside it (a
//     `git clean -fdx`) takes nothing away;
//   - a read lock (an open file description lock) on the directory that
//     holds DIR (the plan's directory, which a clean keeps since it holds
//     the plan), at an offset hashed from the plan name: when DIR/PLAN is
//     removed or replaced, a second apply takes the new directory's flock
//     but finds this byte held, and is refused while the first lives;
//   - the flock on DIR/PLAN/lock that older planruns take, which also holds
//     the holder's name for messages.
//
// The kernel drops all three when the process dies, so a dead holder never
// blocks a plan; a holder found in a lock file whose lock was free is a
// process that died (taken over as stale). A goroutine owned by the lease
// checks every LockCheck that DIR/PLAN is still the directory locked (same
// device and inode), and Lease.Check does it at once: when it is not, the
// lease is lost, and the run must stop.
func (s *FileStore) Lock(_ context.Context, plan string, me Holder) (*Lease, *Holder, error) {
	dir := s.planDir(plan)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("lock: %w", err)
	}
	held := &fileLock{plan: plan, dir: dir}
	fail := func(err error) (*Lease, *Holder, error) {
		held.close()
		return nil, nil, err
	}
	var err error
	if held.anchor, err = os.Open(filepath.Dir(s.Dir)); err != nil {
		return fail(fmt.Errorf("lock: %w", err))
	}
	held.at = planByte(filepath.Base(s.Dir), plan)
	if held.dirFile, err = os.Open(dir); err != nil {
		return fail(fmt.Errorf("lock: %w", err))
	}
	if err := syscall.Flock(int(held.dirFile.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return fail(&LockedError{Plan: plan, Holder: held.holder()})
		}
		return fail(fmt.Errorf("lock %s: %w", dir, err))
	}
	if err := held.guard(); err != nil {
		return fail(err)
	}
	if held.lockFile, err = flock(plan, filepath.Join(dir, "lock")); err != nil {
		return fail(err)
	}
	var stale *Holder
	if prev := readHolder(held.lockFile); prev.PID != 0 {
		stale = &prev
	}
	raw, _ := json.Marshal(me) // a Holder always marshals
	if err := writeHolder(held.lockFile, raw); err != nil {
		return fail(fmt.Errorf("lock %s: %w", held.lockFile.Name(), err))
	}
	if err := s.migrate(plan); err != nil {
		_ = writeHolder(held.lockFile, nil)
		return fail(err)
	}

	stop := make(chan struct{})
	var watcher sync.WaitGroup
	var lease *Lease
	lease = newLease(func() error {
		close(stop)
		watcher.Wait()
		// Empty the file first, so that a clean release is not taken for a dead holder.
		err := writeHolder(held.lockFile, nil)
		if cerr := held.close(); err == nil {
			err = cerr
		}
		return err
	})
	lease.check = func() error {
		if err := held.still(); err != nil {
			lease.lose(err)
		}
		return lease.Err()
	}
	every := s.LockCheck
	if every <= 0 {
		every = DefaultFileLockCheck
	}
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if lease.check() != nil {
					return
				}
			}
		}
	}()
	return lease, stale, nil
}

// fileLock is what a FileStore lease holds open.
type fileLock struct {
	plan     string
	dir      string
	dirFile  *os.File // flocked
	anchor   *os.File // read-locked at the plan's byte
	at       int64    // the plan's byte
	lockFile *os.File // flocked, holds the holder
}

func (l *fileLock) close() error {
	var first error
	for _, f := range []*os.File{l.lockFile, l.anchor, l.dirFile} {
		if f == nil {
			continue
		}
		// Closing the last descriptor drops its flock and its OFD lock.
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// guard read-locks the plan's byte of the anchor, refusing when another
// process holds it (its directory was removed or replaced under it).
// Directories open read-only, so the lock is a read lock (a test for a
// write lock still sees it). It spans 1+pid bytes: an OFD lock does not
// tell its process, and the length then does.
func (l *fileLock) guard() error {
	if pid, held, err := l.anchorHolder(); err != nil {
		return err
	} else if held {
		h := Holder{Host: "another process, which still runs on the lock of a directory since removed (" + l.dir + ")"}
		if pid > 0 {
			h = Holder{Host: hostname(), PID: pid}
		}
		return &LockedError{Plan: l.plan, Holder: h}
	}
	lk := syscall.Flock_t{Type: syscall.F_RDLCK, Whence: io.SeekStart, Start: l.at, Len: 1 + int64(os.Getpid())}
	if err := syscall.FcntlFlock(l.anchor.Fd(), fOFDSetlk, &lk); err != nil {
		return fmt.Errorf("lock %s: %w", l.anchor.Name(), err)
	}
	return nil
}

// anchorHolder tests the plan's byte of the anchor: whether another lock
// holds it, and that holder's pid when its length tells it.
func (l *fileLock) anchorHolder() (pid int, held bool, err error) {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: l.at, Len: 1}
	if err := syscall.FcntlFlock(l.anchor.Fd(), fOFDGetlk, &lk); err != nil {
		return 0, false, fmt.Errorf("lock %s: %w", l.anchor.Name(), err)
	}
	if lk.Type == syscall.F_UNLCK {
		return 0, false, nil
	}
	if lk.Start == l.at && lk.Len > 1 {
		pid = int(lk.Len - 1)
	}
	return pid, true, nil
}

// holder names who holds the flock on the plan's directory: the holder
// its lock file names, else (the file was removed) the process holding the
// plan's byte.
func (l *fileLock) holder() Holder {
	if lf, err := os.Open(filepath.Join(l.dir, "lock")); err == nil {
		h := readHolder(lf)
		lf.Close()
		if h.PID != 0 {
			return h
		}
	}
	if pid, _, _ := l.anchorHolder(); pid > 0 {
		return Holder{Host: hostname(), PID: pid}
	}
	return Holder{Host: "another process (its lock file " + filepath.Join(l.dir, "lock") + " is gone)"}
}

// planByte is the offset of a plan's byte in the anchor's lock space: of
// the plan in the store named store (".planrun") below the anchor. Below
// 2^62, it leaves room for the length of a lock after it.
func planByte(store, plan string) int64 {
	sum := sha256.Sum256([]byte("planrun:" + store + "/" + plan))
	return int64(binary.BigEndian.Uint64(sum[:8]) >> 2)
}

// still says whether the directory locked is still the one at its path.
func (l *fileLock) still() error {
	held, err := l.dirFile.Stat()
	if err != nil {
		return &LockLostError{Plan: l.plan, Where: l.dir, Err: fmt.Errorf("the lock's directory: %w", err)}
	}
	now, err := os.Stat(l.dir)
	if err != nil || !os.SameFile(held, now) {
		return &LockLostError{Plan: l.plan, Where: l.dir, Err: errRemoved}
	}
	return nil
}

var errRemoved = errors.New("was removed or replaced")

func hostname() string {
	host, err := os.Hostname()
	if err != nil {
		return "unknown-host"
	}
	return host
}
