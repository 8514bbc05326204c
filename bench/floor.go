package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// rawFloor is the least any copy has to do: every table's rows streamed
// with COPY TO | COPY FROM (binary), jobs tables at a time, into tables
// without indexes, then the post-data section restored with pg_restore
// --jobs. No snapshot, no chunks, no large objects or sequences, no
// state: what is left is the servers' own work. The schema (pre-data) is
// created before the clock starts.
func (b *bench) rawFloor(ctx context.Context, target string, r *result) error {
	archive := filepath.Join(b.work, "floor.dump")
	defer os.Remove(archive)
	dump := exec.CommandContext(ctx, b.tool("pg_dump"), "-Fc", "--section=pre-data", "--section=post-data", "--file="+archive, "--dbname="+b.libpq(b.src, b.db))
	dump.Env = b.src.clientEnv(b.binDir)
	if err := failed("pg_dump", runCommand(ctx, dump, false)); err != nil {
		return err
	}
	pre := exec.CommandContext(ctx, b.tool("pg_restore"), "--section=pre-data", "--no-owner", "--no-acl", "--dbname="+b.libpq(b.dst, target), archive)
	pre.Env = b.dst.clientEnv(b.binDir)
	if err := failed("pg_restore pre-data", runCommand(ctx, pre, false)); err != nil {
		return err
	}

	conn, err := pgx.Connect(ctx, b.src.URL(b.db))
	if err != nil {
		return err
	}
	names, err := tableNames(ctx, conn)
	conn.Close(ctx)
	if err != nil {
		return err
	}
	start := time.Now()
	var bytes int64
	var mu sync.Mutex
	// One source connection per worker, opened as it starts.
	err = parallel(ctx, names, b.jobs, b.dst.URL(target), func(ctx context.Context, dst *pgx.Conn, name string) error {
		src, err := pgx.Connect(ctx, b.src.URL(b.db))
		if err != nil {
			return err
		}
		defer src.Close(context.WithoutCancel(ctx))
		n, err := pipeTable(ctx, src, dst, name)
		mu.Lock()
		bytes += n
		mu.Unlock()
		return err
	})
	if err != nil {
		return err
	}
	data := time.Since(start).Seconds()
	post := exec.CommandContext(ctx, b.tool("pg_restore"), "--section=post-data", "--jobs="+strconv.Itoa(b.jobs), "--no-owner", "--no-acl", "--dbname="+b.libpq(b.dst, target), archive)
	post.Env = b.dst.clientEnv(b.binDir)
	p := runCommand(ctx, post, false)
	if err := failed("pg_restore post-data", p); err != nil {
		return err
	}
	r.seconds = data + p.seconds
	r.clientCPU = p.cpu
	r.detail = fmt.Sprintf("data %.1fs (%s streamed, whole tables), post-data %.1fs", data, human(bytes), p.seconds)
	return nil
}

// pipeTable streams one table, binary COPY out piped into binary COPY in.
func pipeTable(ctx context.Context, src, dst *pgx.Conn, name string) (int64, error) {
	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	var srcErr error
	var n int64
	wg.Go(func() {
		bw := bufio.NewWriterSize(pw, 256<<10)
		counted := writerFunc(func(p []byte) (int, error) {
			n += int64(len(p))
			return bw.Write(p)
		})
		_, err := src.PgConn().CopyTo(ctx, counted, "COPY "+name+" TO STDOUT (FORMAT binary)")
		if err == nil {
			err = bw.Flush()
		}
		srcErr = err
		pw.CloseWithError(err)
	})
	_, err := dst.PgConn().CopyFrom(ctx, pr, "COPY "+name+" FROM STDIN (FORMAT binary)")
	pr.CloseWithError(io.ErrClosedPipe)
	wg.Wait()
	if srcErr != nil {
		return n, fmt.Errorf("%s: source: %w", name, srcErr)
	}
	if err != nil {
		return n, fmt.Errorf("%s: target: %w", name, err)
	}
	return n, nil
}
