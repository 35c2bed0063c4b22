package mongo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// patientWrite is an update of Patient/id whose body records its content.
func patientWrite(op store.Op, id, family string) store.Write {
	content := []byte(fmt.Sprintf(`{"resourceType":"Patient","id":%q,"name":[{"family":%q}]}`, id, family))
	return store.Write{
		Op: op, Type: "Patient", ID: id, Content: content, Hash: store.HashContent(content),
		Stamp: func(v int64, at time.Time) ([]byte, error) {
			return []byte(fmt.Sprintf(`{"resourceType":"Patient","id":%q,"meta":{"versionId":"%d","lastUpdated":%q},"name":[{"family":%q}]}`,
				id, v, at.Format(time.RFC3339Nano), family)), nil
		},
		Compartments: []string{"Patient/" + id},
		Index:        []store.IndexValue{{Param: "family", Value: strings.ToLower(family)}},
	}
}

func mustApply(t *testing.T, s store.Store, writes ...store.Write) []store.Result {
	t.Helper()
	res, err := s.Apply(context.Background(), writes)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return res
}

// allVersions lists a resource's history, oldest first.
func allVersions(t *testing.T, s store.Store, typ, id string) []store.Resource {
	t.Helper()
	var out []store.Resource
	q := store.HistoryQuery{Type: typ, ID: id, Count: store.MaxPageSize}
	for {
		p, err := s.History(context.Background(), q)
		if err != nil {
			t.Fatalf("History %s/%s: %v", typ, id, err)
		}
		out = append(out, p.Versions...)
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	slices.Reverse(out)
	return out
}

func TestSeveralWritesNeedTransactions(t *testing.T) {
	s := openTest(t, Options{})
	if s.Transactions() {
		t.Skip("the server has transactions")
	}
	_, err := s.Apply(context.Background(), []store.Write{patientWrite(store.OpCreate, "a", "A"), patientWrite(store.OpCreate, "b", "B")})
	if !errors.Is(err, store.ErrUnsupported) || !strings.Contains(err.Error(), "transaction Bundles need a MongoDB replica set") {
		t.Fatalf("Apply of two writes on a standalone server: %v, want ErrUnsupported explaining it", err)
	}
	if n, _ := s.Count(context.Background(), ""); n != 0 {
		t.Errorf("a refused Apply wrote %d resources", n)
	}
	if p, _ := s.History(context.Background(), store.HistoryQuery{}); len(p.Versions) != 0 {
		t.Errorf("a refused Apply wrote history: %v", p.Versions)
	}
	// Invalid writes are still reported as such, before the refusal.
	bad := patientWrite(store.OpCreate, "", "X")
	var we *store.WriteError
	if _, err := s.Apply(context.Background(), []store.Write{patientWrite(store.OpCreate, "a", "A"), bad}); !errors.As(err, &we) || we.Index != 1 {
		t.Errorf("Apply with an invalid second write: %v, want a *WriteError at 1", err)
	}
	mustApply(t, s, patientWrite(store.OpCreate, "a", "A"))
}

// TestDocumentShape pins the stored documents down and checks that the
// filters the search engine will use match what they should on the test
// server, without $elemMatch.
func TestDocumentShape(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	w := patientWrite(store.OpCreate, "p1", "Smith")
	w.Practice = "1234"
	w.Index = []store.IndexValue{
		{Param: "family", Value: "smith"},
		{Param: "identifier", Value: "urn:mrn|42"},
		{Param: "birthdate", Low: "1970-01-01T00:00:00.000Z", High: "1970-01-01T23:59:59.999Z"},
		{Param: "date", Low: "2020-01-01T00:00:00.000Z", High: "2020-12-31T23:59:59.999Z"},
		{Param: "odd.name", Value: "x"},
	}
	res := mustApply(t, s, w)[0]
	other := patientWrite(store.OpCreate, "p2", "Smithers")
	other.Index = []store.IndexValue{{Param: "family", Value: "smithers"}, {Param: "birthdate", Low: "1990-05-01T00:00:00.000Z", High: "1990-05-01T23:59:59.999Z"}}
	mustApply(t, s, other)

	var raw bson.M
	if err := s.db.Collection("Patient").FindOne(ctx, bson.D{{Key: "_id", Value: "p1"}}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if raw["version"] != int64(1) || raw["deleted"] != false || raw["practice"] != "1234" || raw["shard"] != "Patient/p1" || raw["hash"] != w.Hash {
		t.Errorf("current document = %v", raw)
	}
	if got, ok := raw["lastUpdated"].(bson.DateTime); !ok || !got.Time().Equal(res.LastUpdated) {
		t.Errorf("lastUpdated = %#v, want a date %v", raw["lastUpdated"], res.LastUpdated)
	}
	if raw["body"] != string(res.Body) {
		t.Errorf("body = %v, want the stamped JSON as a string", raw["body"])
	}
	b, _ := json.Marshal(raw["idx"])
	if string(b) != `["family=smith","identifier=urn:mrn|42","odd.name=x"]` {
		t.Errorf("idx = %s", b)
	}
	b, _ = json.Marshal(raw["rng"])
	if string(b) != `{"birthdate":{"lo":["1970-01-01T00:00:00.000Z"],"hi":["1970-01-01T23:59:59.999Z"]},"date":{"lo":["2020-01-01T00:00:00.000Z"],"hi":["2020-12-31T23:59:59.999Z"]}}` {
		t.Errorf("rng = %s", b)
	}
	var hist bson.M
	if err := s.history.FindOne(ctx, bson.D{{Key: "type", Value: "Patient"}, {Key: "id", Value: "p1"}}).Decode(&hist); err != nil {
		t.Fatal(err)
	}
	if hist["version"] != int64(1) || hist["body"] != string(res.Body) || hist["deleted"] != false {
		t.Errorf("history document = %v", hist)
	}

	for _, tc := range []struct {
		name   string
		filter bson.D
		want   []string
	}{
		{"token equality", bson.D{{Key: "idx", Value: "identifier=urn:mrn|42"}}, []string{"p1"}},
		{"any of", bson.D{{Key: "idx", Value: bson.D{{Key: "$in", Value: bson.A{"family=smith", "family=smithers"}}}}}, []string{"p1", "p2"}},
		{"all of", bson.D{{Key: "idx", Value: bson.D{{Key: "$all", Value: bson.A{"family=smith", "identifier=urn:mrn|42"}}}}}, []string{"p1"}},
		{"string prefix", bson.D{{Key: "idx", Value: bson.D{{Key: "$regex", Value: "^family=smi"}}}}, []string{"p1", "p2"}},
		{"prefix of another parameter's value", bson.D{{Key: "idx", Value: bson.D{{Key: "$regex", Value: "^identifier=smi"}}}}, nil},
		{"range ends after", bson.D{{Key: "rng.birthdate.hi", Value: bson.D{{Key: "$gte", Value: "1980"}}}}, []string{"p2"}},
		{"range starts before", bson.D{{Key: "rng.birthdate.lo", Value: bson.D{{Key: "$lt", Value: "1980"}}}}, []string{"p1"}},
		// p1's date range is later, but belongs to another parameter.
		{"range of one parameter only", bson.D{{Key: "rng.birthdate.hi", Value: bson.D{{Key: "$gte", Value: "2000"}}}}, nil},
		{"range within", bson.D{{Key: "rng.birthdate.lo", Value: bson.D{{Key: "$gte", Value: "1970-01-01"}}}, {Key: "rng.birthdate.hi", Value: bson.D{{Key: "$lte", Value: "1970-01-02"}}}}, []string{"p1"}},
		{"compartment", bson.D{{Key: "compartments", Value: "Patient/p2"}}, []string{"p2"}},
	} {
		cur, err := s.db.Collection("Patient").Find(ctx, tc.filter, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var docs []struct {
			ID string `bson:"_id"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range docs {
			got = append(got, d.ID)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: matched %v, want %v", tc.name, got, tc.want)
		}
	}

	// A deletion keeps version and time, and drops body and search values.
	mustApply(t, s, store.Write{Op: store.OpDelete, Type: "Patient", ID: "p1"})
	raw = nil
	s.db.Collection("Patient").FindOne(ctx, bson.D{{Key: "_id", Value: "p1"}}).Decode(&raw)
	for _, f := range []string{"body", "idx", "rng", "compartments", "hash"} {
		if _, ok := raw[f]; ok {
			t.Errorf("deleted document keeps %s: %v", f, raw)
		}
	}
	if raw["deleted"] != true || raw["version"] != int64(2) || raw["shard"] != "Patient/p1" {
		t.Errorf("deleted document = %v", raw)
	}
	// It keeps the practice, marked kept; one written before deletions
	// kept it reads as owned by an unknown practice, never as unowned.
	if raw["practice"] != "1234" || raw["kept"] != true {
		t.Errorf("deleted document keeps practice %v, kept %v; want 1234, true", raw["practice"], raw["kept"])
	}
	if got, err := s.Read(ctx, "Patient", "p1"); !errors.Is(err, store.ErrGone) || got.Practice != "1234" {
		t.Errorf("Read deleted = Practice %q, %v; want 1234, ErrGone", got.Practice, err)
	}
	if _, err := s.db.Collection("Patient").UpdateOne(ctx, bson.D{{Key: "_id", Value: "p1"}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "practice", Value: ""}, {Key: "kept", Value: ""}}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Read(ctx, "Patient", "p1"); !errors.Is(err, store.ErrGone) || got.Practice != store.UnknownPractice {
		t.Errorf("Read of a deletion without a kept practice = Practice %q, %v; want %q, ErrGone", got.Practice, err, store.UnknownPractice)
	}
}

// TestApplyEachAgainstConcurrentWriters has ApplyEach and single Applies
// race on the same resources: every write that reports success made one
// version, and history holds each version exactly once.
func TestApplyEachAgainstConcurrentWriters(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	const resources, rounds = 8, 6
	var mu sync.Mutex
	made := map[string]int{}
	count := func(r store.Result) {
		mu.Lock()
		made[r.ID]++
		mu.Unlock()
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				var batch []store.Write
				for i := range resources {
					batch = append(batch, patientWrite(store.OpUpdate, fmt.Sprint("p", i), fmt.Sprintf("each%d-%d", w, r)))
				}
				// The same resource twice in one batch: applied in order.
				batch = append(batch, patientWrite(store.OpUpdate, "p0", fmt.Sprintf("again%d-%d", w, r)))
				res, werrs, err := s.ApplyEach(ctx, batch)
				if err != nil {
					errs <- err
					return
				}
				for i, e := range werrs {
					if e != nil {
						errs <- fmt.Errorf("write %d: %v", i, e)
						return
					}
					count(res[i])
				}
			}
		}()
	}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds * resources {
				res, err := s.Apply(ctx, []store.Write{patientWrite(store.OpUpdate, fmt.Sprint("p", r%resources), fmt.Sprintf("one%d-%d", w, r))})
				if err != nil {
					errs <- err
					return
				}
				count(res[0])
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for i := range resources {
		id := fmt.Sprint("p", i)
		vs := allVersions(t, s, "Patient", id)
		total += len(vs)
		if len(vs) != made[id] {
			t.Errorf("%s: %d versions in history, %d writes reported one", id, len(vs), made[id])
		}
		for j, v := range vs {
			if v.VersionID != int64(j+1) {
				t.Errorf("%s: history holds version %d at place %d", id, v.VersionID, j+1)
				break
			}
			if j > 0 && !v.LastUpdated.After(vs[j-1].LastUpdated) {
				t.Errorf("%s: version %d at %v, not after version %d", id, v.VersionID, v.LastUpdated, j)
			}
		}
		cur, err := s.Read(ctx, "Patient", id)
		if err != nil || cur.VersionID != int64(len(vs)) || string(cur.Body) != string(vs[len(vs)-1].Body) {
			t.Errorf("%s: current version %d (%v), history ends at %d", id, cur.VersionID, err, len(vs))
		}
	}
	sys := 0
	q := store.HistoryQuery{Count: 100}
	for {
		p, err := s.History(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		sys += len(p.Versions)
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	if sys != total {
		t.Errorf("system history has %d versions, the resources %d", sys, total)
	}
}

// TestTwoEnginesShareADatabase: what one server writes, another reads, and
// times never go back along the store-wide history whichever wrote.
func TestTwoEnginesShareADatabase(t *testing.T) {
	uri := ferret.URI(ferret.NewDatabase())
	a, b := openURI(t, uri, Options{}), openURI(t, uri, Options{})
	ctx := context.Background()
	for i := range 10 {
		st := []*Store{a, b}[i%2]
		op := store.OpUpdate
		if i < 2 {
			op = store.OpCreate
		}
		mustApply(t, st, patientWrite(op, fmt.Sprint("p", i%2), fmt.Sprint("v", i)))
	}
	for _, st := range []*Store{a, b} {
		for id, want := range map[string]string{"p0": "v8", "p1": "v9"} {
			r, err := st.Read(ctx, "Patient", id)
			if err != nil || r.VersionID != 5 || !strings.Contains(string(r.Body), want) {
				t.Errorf("Read %s = version %d %s, %v; want version 5 with %s", id, r.VersionID, r.Body, err, want)
			}
		}
	}
	p, err := b.History(ctx, store.HistoryQuery{})
	if err != nil || len(p.Versions) != 10 {
		t.Fatalf("system history: %d versions, %v", len(p.Versions), err)
	}
	for i := 1; i < len(p.Versions); i++ {
		if p.Versions[i].LastUpdated.After(p.Versions[i-1].LastUpdated) {
			t.Errorf("%s/%d (%v) listed after the older %s/%d (%v)", p.Versions[i].ID, p.Versions[i].VersionID, p.Versions[i].LastUpdated,
				p.Versions[i-1].ID, p.Versions[i-1].VersionID, p.Versions[i-1].LastUpdated)
		}
	}
	if _, err := b.Collection(store.CollectionDef{Name: "sessions"}).Create(ctx, store.Record{ID: "s1", Data: json.RawMessage(`{"user":"u"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Collection(store.CollectionDef{Name: "sessions"}).Get(ctx, "s1"); err != nil {
		t.Errorf("a record written through one engine, read through the other: %v", err)
	}
}

// TestVReadBridgesHistoryWrite: without transactions a version is in the
// current document a moment before it is in history; VRead finds it there.
func TestVReadBridgesHistoryWrite(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	res := mustApply(t, s, patientWrite(store.OpCreate, "p1", "A"))[0]
	if _, err := s.history.DeleteOne(ctx, bson.D{{Key: "type", Value: "Patient"}, {Key: "id", Value: "p1"}}); err != nil {
		t.Fatal(err)
	}
	v, err := s.VRead(ctx, "Patient", "p1", 1)
	if err != nil || string(v.Body) != string(res.Body) || !v.LastUpdated.Equal(res.LastUpdated) {
		t.Errorf("VRead of a version not yet in history = %+v, %v", v, err)
	}
	if _, err := s.VRead(ctx, "Patient", "p1", 2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("VRead of a version that does not exist: %v, want ErrNotFound", err)
	}
}

// TestHistorySurvivesSequenceCollisions: where the counter is not atomic
// across processes, two writers may draw one sequence number; the second
// history insertion is renumbered rather than lost.
func TestHistorySurvivesSequenceCollisions(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	mustApply(t, s, patientWrite(store.OpCreate, "p1", "A"))
	// Another process drew the next numbers but has not written yet.
	if _, err := s.counters.UpdateOne(ctx, bson.D{{Key: "_id", Value: counterID}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: int64(-1)}}}}); err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, patientWrite(store.OpUpdate, "p1", "B"))
	if vs := allVersions(t, s, "Patient", "p1"); len(vs) != 2 || vs[1].VersionID != 2 {
		t.Errorf("history after a sequence collision = %d versions", len(vs))
	}
	res, errs, err := s.ApplyEach(ctx, []store.Write{patientWrite(store.OpUpdate, "p1", "C"), patientWrite(store.OpCreate, "p2", "D")})
	if err != nil || errs[0] != nil || errs[1] != nil || res[0].VersionID != 3 {
		t.Fatalf("ApplyEach = %+v, %v, %v", res, errs, err)
	}
	p, err := s.History(ctx, store.HistoryQuery{})
	if err != nil || len(p.Versions) != 4 {
		t.Errorf("system history = %d versions, %v; want 4", len(p.Versions), err)
	}
}

// TestBulkCompareAndSet checks the several-documents path of writeCurrent
// (used inside transactions): it fails when any compare-and-set misses.
func TestBulkCompareAndSet(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	mustApply(t, s, patientWrite(store.OpCreate, "a", "A"))
	mustApply(t, s, patientWrite(store.OpCreate, "b", "B"))
	states := func(versionOfB int64) []*resState {
		p, err := s.load(ctx, []store.Write{patientWrite(store.OpUpdate, "a", "A2"), patientWrite(store.OpUpdate, "b", "B2"), patientWrite(store.OpUpdate, "c", "C")})
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range []store.Write{patientWrite(store.OpUpdate, "a", "A2"), patientWrite(store.OpUpdate, "b", "B2"), patientWrite(store.OpUpdate, "c", "C")} {
			if err := p.add(i, w); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.number(ctx, p.vers); err != nil {
			t.Fatal(err)
		}
		for _, v := range p.vers {
			v.stamp(ctx)
		}
		p.states[resKey{"Patient", "b"}].loaded.Version = versionOfB
		return p.order
	}
	if err := s.writeCurrent(ctx, "Patient", states(7)); !errors.Is(err, errRace) {
		t.Errorf("bulk with a stale version: %v, want errRace", err)
	}
	s.db.Collection("Patient").DeleteOne(ctx, bson.D{{Key: "_id", Value: "c"}})
	if err := s.writeCurrent(ctx, "Patient", states(1)); err != nil {
		t.Errorf("bulk with current versions: %v", err)
	}
	if r, _ := s.Read(ctx, "Patient", "c"); r.VersionID != 1 {
		t.Errorf("bulk did not insert the new resource: %+v", r)
	}
}

func TestOpenReportsProblemsQuickly(t *testing.T) {
	ctx := context.Background()
	host := strings.TrimPrefix(ferret.URI(""), "mongodb://")
	for _, tc := range []struct {
		name, uri, want string
	}{
		{"invalid URI", "mongodbx://nowhere", "invalid MongoDB URI"},
		{"unreachable server", "mongodb://127.0.0.1:1/x", "cannot reach MongoDB at 127.0.0.1:1"},
		{"refused credentials", "mongodb://someone:s3cret@" + host + "x", "auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			s, err := Open(ctx, tc.uri, Options{ConnectTimeout: time.Second})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error reveals the password: %v", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Open took %v to fail", d)
			}
		})
	}
}

func TestDatabaseFromURIOrOption(t *testing.T) {
	name := ferret.NewDatabase()
	if s := openURI(t, ferret.URI(name), Options{}); s.Database() != name {
		t.Errorf("database from the URI = %q, want %q", s.Database(), name)
	}
	if s := openURI(t, ferret.URI(name), Options{Database: "other"}); s.Database() != "other" {
		t.Errorf("Options.Database did not win: %q", s.Database())
	}
	if s := openURI(t, ferret.URI(""), Options{}); s.Database() != DefaultDatabase {
		t.Errorf("default database = %q", s.Database())
	}
}

func TestCheckIndexes(t *testing.T) {
	ctx := context.Background()
	uri := ferret.URI(ferret.NewDatabase())
	missing := func() []string {
		t.Helper()
		fs, err := CheckIndexes(ctx, uri, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, f := range fs {
			if strings.HasPrefix(f.Problem, "missing") {
				out = append(out, f.Collection+" "+f.Index.Keys)
			}
		}
		return out
	}
	if got := missing(); len(got) != len(historyIndexes) {
		t.Errorf("an empty database lacks %v, want the history indexes", got)
	}
	s := openURI(t, uri, Options{})
	mustApply(t, s, patientWrite(store.OpCreate, "p1", "A"))
	if _, err := s.Collection(store.CollectionDef{Name: "clients", Keys: []string{"owner"}}).Create(ctx, store.Record{ID: "c1", Data: json.RawMessage(`{"owner":"o"}`)}); err != nil {
		t.Fatal(err)
	}
	if got := missing(); len(got) != 0 {
		t.Errorf("after start-up and first use, missing %v", got)
	}
	if err := s.db.Collection("rec_clients").Indexes().DropOne(ctx, "data.owner_1"); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Collection("Patient").Indexes().DropOne(ctx, "idx_1_practice_1"); err != nil {
		t.Fatal(err)
	}
	if got := missing(); !slices.Equal(got, []string{"Patient {idx: 1, practice: 1}", "rec_clients {data.owner: 1}"}) {
		t.Errorf("after dropping two indexes, missing %v", got)
	}
	// Open creates what is missing.
	openURI(t, uri, Options{})
	if got := missing(); !slices.Equal(got, []string{"rec_clients {data.owner: 1}"}) {
		t.Errorf("after a restart, missing %v (record indexes come with first use)", got)
	}
}

func TestExpiredRecordsAreSwept(t *testing.T) {
	s := openTest(t, Options{SweepInterval: 10 * time.Millisecond})
	ctx := context.Background()
	c := s.Collection(store.CollectionDef{Name: "codes"})
	if _, err := c.Create(ctx, store.Record{ID: "old", Data: json.RawMessage(`{}`), ExpiresAt: time.Now().Add(20 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(ctx, store.Record{ID: "new", Data: json.RawMessage(`{}`), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := s.db.Collection("rec_codes").CountDocuments(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records stored 10s after one expired", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRecordDataRoundTrips(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	c := s.Collection(store.CollectionDef{Name: "things", Keys: []string{"k"}})
	data := `{"z":1,"a":[1.5,"x",null,true,{"n":-3}],"k":"v","big":9007199254740993,"f":1.0}`
	if _, err := c.Create(ctx, store.Record{ID: "t", Data: json.RawMessage(data)}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Get(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Data) != data {
		t.Errorf("data = %s, want %s", r.Data, data)
	}
}
