package portal

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeSMTP is an SMTP server that requires STARTTLS and AUTH PLAIN and
// keeps what it receives.
type fakeSMTP struct {
	ln   net.Listener
	tls  *tls.Config
	mu   sync.Mutex
	auth string
	from string
	to   []string
	data string
}

func newFakeSMTP(t *testing.T) (*fakeSMTP, *x509.CertPool) {
	ts := httptest.NewTLSServer(nil) // for its certificate (127.0.0.1)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	cert := ts.TLS.Certificates[0]
	ts.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSMTP{ln: ln, tls: &tls.Config{Certificates: []tls.Certificate{cert}}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f, pool
}

func (f *fakeSMTP) serve(c net.Conn) {
	defer c.Close()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	say := func(s string) { w.WriteString(s + "\r\n"); w.Flush() }
	secure := false
	say("220 fake ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch {
		case cmd == "EHLO" || cmd == "HELO":
			if secure {
				say("250-fake\r\n250-AUTH PLAIN\r\n250 8BITMIME")
			} else {
				say("250-fake\r\n250 STARTTLS")
			}
		case cmd == "STARTTLS":
			say("220 go ahead")
			tc := tls.Server(c, f.tls)
			if tc.Handshake() != nil {
				return
			}
			c, secure = tc, true
			r, w = bufio.NewReader(tc), bufio.NewWriter(tc)
		case cmd == "AUTH":
			if !secure {
				say("530 STARTTLS first")
				continue
			}
			parts := strings.Fields(line)
			resp := ""
			if len(parts) == 3 {
				resp = parts[2]
			} else {
				say("334 ")
				l, _ := r.ReadString('\n')
				resp = strings.TrimSpace(l)
			}
			dec, _ := base64.StdEncoding.DecodeString(resp)
			f.mu.Lock()
			f.auth = string(dec)
			f.mu.Unlock()
			say("235 ok")
		case cmd == "MAIL":
			f.mu.Lock()
			f.from = line
			f.mu.Unlock()
			say("250 ok")
		case cmd == "RCPT":
			f.mu.Lock()
			f.to = append(f.to, line)
			f.mu.Unlock()
			say("250 ok")
		case cmd == "DATA":
			say("354 go")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			f.mu.Lock()
			f.data = b.String()
			f.mu.Unlock()
			say("250 queued")
		case cmd == "QUIT":
			say("221 bye")
			return
		default: // NOOP, RSET
			say("250 ok")
		}
	}
}

// The SMTP mailer speaks STARTTLS and AUTH PLAIN to the server of the URL
// and sends a plain-text message.
func TestSMTPMailerSendsThroughTheServer(t *testing.T) {
	f, pool := newFakeSMTP(t)
	m, err := NewSMTPMailer("smtp://portal:s3cret@"+f.ln.Addr().String(), "portal@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.client.SetTLSConfig(&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	err = m.Send(context.Background(), Message{To: "ada@example.org", Subject: "Verify your email address", Body: "Open https://portal.example.org/portal/verify?token=abc\n"})
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.auth != "\x00portal\x00s3cret" || !strings.Contains(f.from, "portal@example.org") || len(f.to) != 1 || !strings.Contains(f.to[0], "ada@example.org") {
		t.Errorf("auth %q, from %q, to %q", f.auth, f.from, f.to)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(f.data)))
	if !strings.Contains(f.data, "Subject: Verify your email address") || !strings.Contains(string(body), "verify?token=abc") {
		t.Errorf("data:\n%s", f.data)
	}
}
