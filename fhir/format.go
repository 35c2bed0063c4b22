package fhir

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

const (
	fhirJSON  = "application/fhir+json"
	plainJSON = "application/json"
)

// formats maps every accepted _format value and media type to the type the
// response is labelled with.
var formats = map[string]string{
	"json":      fhirJSON,
	fhirJSON:    fhirJSON,
	plainJSON:   plainJSON,
	"text/json": plainJSON,
}

// responseType picks the response media type from _format (which wins) or
// Accept. It fails with 406 when neither allows JSON.
func responseType(r *http.Request) (string, *Error) {
	if f := r.URL.Query().Get("_format"); f != "" {
		// An unescaped "+" in a query string arrives as a space.
		f = strings.ReplaceAll(f, " ", "+")
		mt, _, err := mime.ParseMediaType(f)
		if err != nil {
			mt = f
		}
		if t, ok := formats[strings.ToLower(mt)]; ok {
			return t, nil
		}
		return fhirJSON, errorf(http.StatusNotAcceptable, "not-supported", "_format %q is not supported: this server speaks application/fhir+json and application/json", f)
	}
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return fhirJSON, nil
	}
	best, bestQ := "", -1.0
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if qs, ok := params["q"]; ok {
				if v, err := strconv.ParseFloat(qs, 64); err == nil {
					q = v
				}
			}
			if q <= 0 || q <= bestQ {
				continue
			}
			var t string
			switch mt = strings.ToLower(mt); mt {
			case "*/*", "application/*":
				t = fhirJSON
			default:
				t = formats[mt]
			}
			if t != "" {
				best, bestQ = t, q
			}
		}
	}
	if best == "" {
		return fhirJSON, errorf(http.StatusNotAcceptable, "not-supported", "none of the media types in Accept is supported: this server speaks application/fhir+json and application/json")
	}
	return best, nil
}

// checkContentType refuses request bodies that are not FHIR JSON (415).
func checkContentType(r *http.Request) *Error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return nil // lenient: many clients omit it; the body is parsed as JSON anyway
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err == nil {
		if _, ok := formats[strings.ToLower(mt)]; ok {
			return nil
		}
	}
	return errorf(http.StatusUnsupportedMediaType, "not-supported", "Content-Type %q is not supported: send application/fhir+json", ct)
}

// writeBody sends a JSON body with the negotiated media type, indented when
// _pretty=true.
func writeBody(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	t, _ := responseType(r)
	if r.URL.Query().Get("_pretty") == "true" {
		var out bytes.Buffer
		if json.Indent(&out, body, "", "  ") == nil {
			body = out.Bytes()
		}
	}
	w.Header().Set("Content-Type", t+"; charset=utf-8")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// writeJSON encodes v and sends it. HTML characters stay as they are: links
// carry & and resources < and >, which FHIR clients expect unescaped.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if err != nil {
		body, _ = json.Marshal(outcome([]Issue{{Severity: "fatal", Code: "exception", Diagnostics: "response could not be encoded"}}))
		status = http.StatusInternalServerError
	}
	writeBody(w, r, status, body)
}
