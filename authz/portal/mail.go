package portal

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	mail "github.com/wneessen/go-mail"
)

// Message is one mail the portal sent, as kept in the outbox:
//
//	{"to": "ada@example.org", "subject": "…", "body": "…", "link": "https://…", "created": "…", "sent": false}
//
// Every message is kept (for 7 days), sent or not: without an SMTP server
// the outbox is the only copy (development mode), and its Link is what a
// developer, or a test, follows.
type Message struct {
	ID      string    `json:"-"`
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Body    string    `json:"body"`
	Link    string    `json:"link,omitempty"`
	Created time.Time `json:"created"`
	Sent    bool      `json:"sent"`
}

const outboxRetention = 7 * 24 * time.Hour

var outboxSeq atomic.Int64

// Mailer sends mail.
type Mailer interface {
	Send(ctx context.Context, m Message) error
}

// send keeps m in the outbox, sends it when a Mailer is configured, and
// otherwise, in development mode only, logs its link (the outbox is the
// mail). A
// failure to send is logged, not shown: what the page says must not
// depend on whether an address exists.
func (p *Portal) send(ctx context.Context, m Message) {
	m.Created = p.cfg.Now()
	// Ids sort in the order messages were written (by this process).
	m.ID = fmt.Sprintf("%019d-%09d-%s", m.Created.UnixNano(), outboxSeq.Add(1), randomText(6))
	if p.cfg.Mailer != nil {
		if err := p.cfg.Mailer.Send(ctx, m); err != nil {
			p.log.Error("portal: sending mail failed; it stays in the outbox", "subject", m.Subject, "err", err)
		} else {
			m.Sent = true
		}
	} else if p.cfg.Dev {
		p.log.Info("portal: mail kept in the outbox (no SMTP server configured)", "to", m.To, "subject", m.Subject, "link", m.Link)
	} else {
		// A link verifies an address or sets a password: outside
		// development mode it stays out of logs, which more people read.
		p.log.Warn("portal: mail kept in the outbox only: no SMTP server is configured", "to", m.To, "subject", m.Subject)
	}
	if err := p.outbox.Create(ctx, m.ID, m, m.Created.Add(outboxRetention)); err != nil {
		p.log.Error("portal: writing the outbox", "err", err)
	}
}

// Outbox returns the messages kept for an address, oldest first (as
// this process wrote them): for
// development mode and tests.
func (p *Portal) Outbox(ctx context.Context, to string) ([]Message, error) {
	ms, recs, err := p.outbox.Find(ctx, "to", normalizeEmail(to))
	for i := range ms {
		ms[i].ID = recs[i].ID
	}
	if err != nil {
		return nil, err
	}
	return ms, nil
}

// SMTPMailer sends mail through an SMTP server (github.com/wneessen/go-mail).
type SMTPMailer struct {
	From   string
	client *mail.Client
}

// NewSMTPMailer returns a Mailer for an SMTP URL:
// smtp://user:password@host:587 (STARTTLS required) or
// smtps://user:password@host:465 (TLS from the start); from is the sender
// address. The user and password are optional.
func NewSMTPMailer(rawURL, from string) (*SMTPMailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" || (u.Scheme != "smtp" && u.Scheme != "smtps") {
		return nil, errors.New("portal: the SMTP URL must be smtp://[user:password@]host[:port] or smtps://…")
	}
	if from == "" {
		return nil, errors.New("portal: a sender address is required to send mail")
	}
	opts := []mail.Option{mail.WithTimeout(15 * time.Second), mail.WithTLSPolicy(mail.TLSMandatory)}
	port := 587
	if u.Scheme == "smtps" {
		port = 465
		opts = append(opts, mail.WithSSL())
	}
	if ps := u.Port(); ps != "" {
		if port, err = strconv.Atoi(ps); err != nil {
			return nil, fmt.Errorf("portal: SMTP port %q", ps)
		}
	}
	opts = append(opts, mail.WithPort(port))
	if u.User != nil {
		pw, _ := u.User.Password()
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover), mail.WithUsername(u.User.Username()), mail.WithPassword(pw))
	}
	c, err := mail.NewClient(u.Hostname(), opts...)
	if err != nil {
		return nil, fmt.Errorf("portal: SMTP client: %w", err)
	}
	return &SMTPMailer{From: from, client: c}, nil
}

// Send sends one plain-text message.
func (s *SMTPMailer) Send(ctx context.Context, m Message) error {
	msg := mail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return err
	}
	if err := msg.To(m.To); err != nil {
		return err
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(mail.TypeTextPlain, m.Body)
	return s.client.DialAndSendWithContext(ctx, msg)
}
