package test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// pageWeights measures the portal's pages in the browser as a test
// drives them: the bytes of the document and of what it loads, and, when
// $FHIRGRAPH_AXE names axe-core's axe.min.js (npm package axe-core; not
// vendored), the accessibility violations axe finds.
type pageWeights struct {
	axe  string
	rows []string
}

func newPageWeights(t *testing.T) *pageWeights {
	w := &pageWeights{}
	if path := os.Getenv("FHIRGRAPH_AXE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("FHIRGRAPH_AXE: %v", err)
		}
		w.axe = string(b)
	}
	return w
}

func (w *pageWeights) measure(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		doc: performance.getEntriesByType('navigation')[0].decodedBodySize,
		res: performance.getEntriesByType('resource').reduce((a, e) => a + e.decodedBodySize, 0),
		n: performance.getEntriesByType('resource').length,
		scripts: document.scripts.length})`))
	if err != nil {
		t.Fatalf("measuring %s: %v", name, err)
	}
	var m struct{ Doc, Res, N, Scripts int }
	json.Unmarshal([]byte(raw), &m)
	row := name + ": " + itoa(m.Doc) + " B document + " + itoa(m.Res) + " B in " + itoa(m.N) + " resources"
	if m.Scripts != 0 {
		t.Errorf("%s has %d scripts; portal pages work without JavaScript", name, m.Scripts)
	}
	if w.axe != "" {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](w.axe+";true")); err != nil {
			t.Fatalf("loading axe-core into %s: %v", name, err)
		}
		res, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}}).then(r => JSON.stringify({passes: r.passes.length, violations: r.violations.map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '))}))`, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("axe on %s: %v", name, err)
		}
		var out struct {
			Passes     int
			Violations []string
		}
		if err := json.Unmarshal([]byte(res), &out); err != nil || out.Passes == 0 {
			t.Fatalf("axe on %s answered %s", name, res)
		}
		if len(out.Violations) > 0 {
			t.Errorf("axe-core finds on %s:\n  %s", name, strings.Join(out.Violations, "\n  "))
		}
		row += "; axe-core: " + itoa(len(out.Violations)) + " violations, " + itoa(out.Passes) + " rules passed"
	}
	w.rows = append(w.rows, row)
}

func (w *pageWeights) report(t *testing.T) {
	if w.axe == "" {
		t.Log("axe-core not run: set FHIRGRAPH_AXE to the path of axe.min.js (npm package axe-core)")
	}
	t.Log("portal page weights:\n  " + strings.Join(w.rows, "\n  "))
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
