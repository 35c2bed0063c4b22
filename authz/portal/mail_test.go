package portal

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
)

type fakeMailer struct {
	mu   sync.Mutex
	sent []Message
	err  error
}

func (f *fakeMailer) Send(_ context.Context, m Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, m)
	return f.err
}

// With a mailer, mail is sent and kept in the outbox; a failure to send
// keeps it there unsent, and the page says the same.
func TestMailIsSentAndKeptInTheOutbox(t *testing.T) {
	for _, fail := range []bool{false, true} {
		m := &fakeMailer{}
		if fail {
			m.err = errors.New("connection refused")
		}
		e := newEnv(t, func(c *Config) { c.Mailer = m })
		pg := e.browser().submit("/portal/signup", "/portal/signup", url.Values{"name": {"Ada"}, "organization": {"Acme"}, "email": {"Ada@Example.org"}, "password": {devPass}, "password_confirm": {devPass}})
		if !strings.Contains(pg.body, "Check your email") {
			t.Fatalf("fail=%v: %d %s", fail, pg.status, pg.body)
		}
		ms, _ := e.p.Outbox(context.Background(), "ada@example.org")
		if len(m.sent) != 1 || len(ms) != 1 || ms[0].Sent == fail || !strings.Contains(m.sent[0].Body, m.sent[0].Link) || m.sent[0].To != "ada@example.org" {
			t.Errorf("fail=%v: sent %+v, outbox %+v", fail, m.sent, ms)
		}
	}
}

func TestSMTPURLs(t *testing.T) {
	for raw, ok := range map[string]bool{
		"smtp://user:pw@mail.example.org:587": true, "smtps://mail.example.org": true, "smtp://mail.example.org": true,
		"http://mail.example.org": false, "smtp://": false, "mail.example.org:25": false, "smtp://mail.example.org:port": false,
	} {
		_, err := NewSMTPMailer(raw, "portal@example.org")
		if (err == nil) != ok {
			t.Errorf("NewSMTPMailer(%q): %v", raw, err)
		}
	}
	if _, err := NewSMTPMailer("smtp://mail.example.org", ""); err == nil {
		t.Error("no sender accepted")
	}
}

// Without a mailer, each message's link is logged (development mode).
func TestOutboxLinksAreLogged(t *testing.T) {
	var buf safeBuffer
	e := newEnv(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(&buf, nil)) })
	e.browser().submit("/portal/signup", "/portal/signup", url.Values{"name": {"Ada"}, "organization": {"Acme"}, "email": {"ada@example.org"}, "password": {devPass}, "password_confirm": {devPass}})
	link := e.lastLink("ada@example.org")
	if !strings.Contains(buf.String(), `link="`+link+`"`) {
		t.Errorf("the log does not show the link %s:\n%s", link, buf.String())
	}
}

type safeBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
