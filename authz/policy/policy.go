// Package policy decides what a SMART access token may do: whether its
// scopes, its user and its client allow one FHIR interaction on one
// resource type, and which filters confine the answer (patient compartment,
// practices, granular scope queries), to be pushed into the store query.
//
// The decision is made by a Casbin enforcer whose model (model.conf) and
// policy (policy.csv) are data embedded in this package: which FHIR
// interaction needs which SMART letter, what SMART v1 words grant, and the
// deployment's rules (which principals may use which scope contexts,
// practices as Casbin domains, who may read AuditEvent). Go code only
// selects the scopes to ask about and assembles the filters.
package policy

import (
	_ "embed"
	"encoding/csv"
	"fmt"
	"strings"
	"sync"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist/cache"
	"github.com/fhirgraph/fhirgraph/authz/scope"
)

//go:embed model.conf
var modelText string

//go:embed policy.csv
var policyText string

// Policy is a loaded model and policy. Its methods are safe for concurrent
// use.
type Policy struct {
	e *casbin.SyncedCachedEnforcer
	// letters is the policy's g lines: FHIR interaction → SMART letter.
	letters map[Interaction]scope.Interactions
}

// New returns the Policy of the embedded model and policy.
func New() (*Policy, error) { return NewFromText(modelText, policyText) }

// NewFromText returns the Policy of a Casbin model and policy given as
// text, for deployments with their own rules and for tests. The policy is
// CSV lines (p, g and g2, as in the model); blank lines and lines starting
// with # are ignored. It returns an error for a model Casbin rejects, a
// line of an unknown type or with the wrong number of fields, a p line
// whose effect is not allow or deny, and g lines that do not map each
// interaction to exactly one SMART letter.
func NewFromText(modelText, policyText string) (*Policy, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("policy: model: %w", err)
	}
	e, err := casbin.NewSyncedCachedEnforcer(m, &textAdapter{text: policyText})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	e.SetCache(&boundedCache{max: 100000})
	p := &Policy{e: e, letters: make(map[Interaction]scope.Interactions)}
	lines, err := e.GetNamedGroupingPolicy("g")
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	for _, l := range lines {
		in := Interaction(l[0])
		letter, ok := scope.Letter(l[1][0])
		if len(l[1]) != 1 || !ok {
			return nil, fmt.Errorf("policy: g, %s, %s: %q is not a SMART letter (c, r, u, d or s)", l[0], l[1], l[1])
		}
		if _, dup := p.letters[in]; dup {
			return nil, fmt.Errorf("policy: interaction %q maps to more than one letter", in)
		}
		p.letters[in] = letter
	}
	return p, nil
}

// Letter returns the SMART letter the policy requires for an interaction,
// and false for an interaction the policy does not know.
func (p *Policy) Letter(in Interaction) (scope.Interactions, bool) {
	l, ok := p.letters[in]
	return l, ok
}

// textAdapter loads policy lines from text, refusing malformed lines
// (Casbin's own string adapter skips them silently, which would drop a
// deny rule unnoticed).
type textAdapter struct{ text string }

func (a *textAdapter) LoadPolicy(m model.Model) error {
	for n, line := range strings.Split(a.text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := csv.NewReader(strings.NewReader(line))
		r.TrimLeadingSpace = true
		fields, err := r.Read()
		if err != nil {
			return fmt.Errorf("policy line %d: %w", n+1, err)
		}
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		key, rule := fields[0], fields[1:]
		if key == "" {
			return fmt.Errorf("policy line %d: no policy type", n+1)
		}
		sec := key[:1]
		ast, ok := m[sec][key]
		if !ok || (sec != "p" && sec != "g") {
			return fmt.Errorf("policy line %d: %q is not a policy type of the model", n+1, key)
		}
		want := len(ast.Tokens)
		if sec == "g" {
			want = strings.Count(ast.Value, "_")
		}
		if len(rule) != want {
			return fmt.Errorf("policy line %d: %s takes %d fields, not %d", n+1, key, want, len(rule))
		}
		if sec == "p" {
			if eft := rule[len(rule)-1]; eft != "allow" && eft != "deny" {
				return fmt.Errorf("policy line %d: effect %q: want allow or deny", n+1, eft)
			}
		}
		if err := m.AddPolicy(sec, key, rule); err != nil {
			return fmt.Errorf("policy line %d: %w", n+1, err)
		}
	}
	return nil
}

func (a *textAdapter) SavePolicy(model.Model) error { return errReadOnly }
func (a *textAdapter) AddPolicy(string, string, []string) error {
	return errReadOnly
}
func (a *textAdapter) RemovePolicy(string, string, []string) error {
	return errReadOnly
}
func (a *textAdapter) RemoveFilteredPolicy(string, string, int, ...string) error {
	return errReadOnly
}

var errReadOnly = fmt.Errorf("policy: the policy is data loaded at start; edit policy.csv")

// boundedCache is Casbin's decision cache with a bound: the request space
// grows with practices, so it forgets everything when full rather than
// grow without limit.
type boundedCache struct {
	mu  sync.RWMutex
	m   map[string]bool
	max int
}

func (c *boundedCache) Set(key string, value bool, _ ...any) error {
	c.mu.Lock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[string]bool)
	}
	c.m[key] = value
	c.mu.Unlock()
	return nil
}

func (c *boundedCache) Get(key string) (bool, error) {
	c.mu.RLock()
	v, ok := c.m[key]
	c.mu.RUnlock()
	if !ok {
		return false, cache.ErrNoSuchKey
	}
	return v, nil
}

func (c *boundedCache) Delete(key string) error {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
	return nil
}

func (c *boundedCache) Clear() error {
	c.mu.Lock()
	c.m = nil
	c.mu.Unlock()
	return nil
}
