package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// linkProxy stands for a slow or capped network link between the
// contenders and the source: a TCP proxy that limits every connection,
// each direction on its own, to rate bytes a second and delays what it
// forwards by delay, as a managed database across a network behaves (the
// cap is per connection, so more streams get more in total).
type linkProxy struct {
	ln     net.Listener
	target string
	rate   float64 // bytes a second per connection and direction; 0: no cap
	delay  time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and every connection's pumps
}

// startLinkProxy listens on a free port of 127.0.0.1 and forwards to
// target (host:port).
func startLinkProxy(ctx context.Context, target string, rate float64, delay time.Duration) (*linkProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("link proxy: %w", err)
	}
	p := &linkProxy{ln: ln, target: target, rate: rate, delay: delay}
	p.ctx, p.cancel = context.WithCancel(ctx)
	p.wg.Go(p.accept)
	return p, nil
}

// port is the proxy's port on 127.0.0.1.
func (p *linkProxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// close stops accepting, cuts every connection and waits for them.
func (p *linkProxy) close() {
	p.cancel()
	p.ln.Close()
	p.wg.Wait()
}

func (p *linkProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// serve forwards one connection both ways until either side closes it.
func (p *linkProxy) serve(client net.Conn) {
	var d net.Dialer
	server, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	ctx, cancel := context.WithCancel(p.ctx)
	var wg sync.WaitGroup
	wg.Go(func() { p.pump(ctx, server, client); cancel() })
	wg.Go(func() { p.pump(ctx, client, server); cancel() })
	<-ctx.Done()
	client.Close()
	server.Close()
	wg.Wait()
}

// packet is what one read brought, and when it may leave.
type packet struct {
	data []byte
	due  time.Time
}

// pump copies from src to dst: a reader stamps each read with the time it
// may leave (now + delay); the writer sends it then, no faster than rate.
// The delay is latency, not a pause per read: reads keep flowing while
// earlier ones wait.
func (p *linkProxy) pump(ctx context.Context, dst io.Writer, src io.Reader) {
	queue := make(chan packet, 256)
	var reader sync.WaitGroup
	reader.Go(func() {
		defer close(queue)
		for {
			buf := make([]byte, 16<<10)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case queue <- packet{buf[:n], time.Now().Add(p.delay)}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	defer reader.Wait()
	// next is when the link is free again: each packet takes len/rate of
	// it. A small burst (what an idle link would have sent in the
	// meantime) is not carried over: the cap holds over any interval.
	next := time.Now()
	for pk := range queue {
		if w := time.Until(pk.due); w > 0 {
			if !sleepCtx(ctx, w) {
				return
			}
		}
		if p.rate > 0 {
			now := time.Now()
			if next.Before(now) {
				next = now
			}
			next = next.Add(time.Duration(float64(len(pk.data)) / p.rate * float64(time.Second)))
			if w := time.Until(next); w > 0 {
				if !sleepCtx(ctx, w) {
					return
				}
			}
		}
		if _, err := dst.Write(pk.data); err != nil {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// parseRate reads a rate such as "4MB" (bytes a second; kB, MB, GB are
// powers of 1024, as PostgreSQL's units), or "" / "0" for no cap.
func parseRate(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   float64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"KB", 1 << 10}, {"B", 1}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, errors.New("want a rate such as 4MB (bytes a second)")
	}
	return v * mult, nil
}
