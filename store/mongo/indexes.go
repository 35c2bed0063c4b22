package mongo

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// index is one index a collection needs. Each collection's list sits next
// to the code whose queries rely on it (resourceIndexes, historyIndexes,
// recordIndexes).
type index struct {
	keys   bson.D
	unique bool
	// ttl makes the server delete a document once the time in its (single)
	// key field has passed, where the server has TTL indexes; elsewhere the
	// index is created without it and the engine's sweeper deletes.
	ttl bool
	// optional indexes are skipped on servers that lack their kind;
	// queries work without them, slower. wildcard marks a wildcard index,
	// which FerretDB accepts and then fails every insert on.
	optional, wildcard bool
	why                string
}

func (ix index) model(ttl bool) mongo.IndexModel {
	o := options.Index()
	if ix.unique {
		o.SetUnique(true)
	}
	if ix.ttl && ttl {
		o.SetExpireAfterSeconds(0)
	}
	return mongo.IndexModel{Keys: ix.keys, Options: o}
}

// ensureIndexes creates a collection's indexes (and so the collection);
// creating an index that exists is a no-op. It reports whether the TTL
// option, when asked for, was accepted.
func (s *Store) ensureIndexes(ctx context.Context, c *mongo.Collection, ixs []index, ttl bool) (bool, error) {
	for _, ix := range ixs {
		if ix.wildcard && s.ferret {
			continue
		}
		_, err := c.Indexes().CreateOne(ctx, ix.model(ttl))
		switch {
		case err == nil:
		case ix.ttl && ttl && isNotImplemented(err):
			ttl = false
			if _, err := c.Indexes().CreateOne(ctx, ix.model(false)); err != nil {
				return ttl, fmt.Errorf("index %s on %s: %w", formatKeys(ix.keys), c.Name(), err)
			}
		case ix.optional && isNotImplemented(err):
			s.log.Debug("mongo store: server lacks an optional index kind", "collection", c.Name(), "index", formatKeys(ix.keys), "err", err)
		default:
			return ttl, fmt.Errorf("index %s on %s: %w", formatKeys(ix.keys), c.Name(), err)
		}
	}
	return ttl, nil
}

// ensureStartIndexes creates, at Open, the indexes of history and of every
// resource collection that already exists.
func (s *Store) ensureStartIndexes(ctx context.Context) error {
	if _, err := s.ensureIndexes(ctx, s.history, historyIndexes, false); err != nil {
		return err
	}
	types, err := s.resourceTypes(ctx)
	if err != nil {
		return err
	}
	for _, typ := range types {
		if err := s.ensureType(ctx, typ); err != nil {
			return err
		}
	}
	return nil
}

// ensureType creates a resource collection's indexes once per process,
// before the first write to it (transactions cannot create indexes).
func (s *Store) ensureType(ctx context.Context, typ string) error {
	s.typesMu.Lock()
	done := s.types[typ]
	s.typesMu.Unlock()
	if done {
		return nil
	}
	if _, err := s.ensureIndexes(ctx, s.db.Collection(typ), resourceIndexes, false); err != nil {
		return err
	}
	s.typesMu.Lock()
	s.types[typ] = true
	s.typesMu.Unlock()
	return nil
}

// IndexSpec describes one index a collection needs.
type IndexSpec struct {
	Keys   string // e.g. {type: 1, _id: -1}
	Unique bool
	TTL    bool
	// Optional indexes are created only where the server has their kind.
	Optional bool
	Why      string
}

func (ix index) spec() IndexSpec {
	return IndexSpec{Keys: formatKeys(ix.keys), Unique: ix.unique, TTL: ix.ttl, Optional: ix.optional, Why: ix.why}
}

func (sp IndexSpec) String() string {
	var b strings.Builder
	b.WriteString(sp.Keys)
	if sp.Unique {
		b.WriteString(" unique")
	}
	if sp.TTL {
		b.WriteString(" TTL (expireAfterSeconds: 0)")
	}
	if sp.Optional {
		b.WriteString(" (where supported)")
	}
	return b.String()
}

// CollectionIndexes lists the indexes of one collection, or of a family of
// collections (Collection then names the pattern, e.g. "<ResourceType>").
type CollectionIndexes struct {
	Collection string
	About      string
	Indexes    []IndexSpec
}

// IndexPlan lists every index the engine creates, per collection.
func IndexPlan() []CollectionIndexes {
	specs := func(ixs []index) []IndexSpec {
		out := make([]IndexSpec, len(ixs))
		for i, ix := range ixs {
			out[i] = ix.spec()
		}
		return out
	}
	return []CollectionIndexes{
		{Collection: "<ResourceType>", About: "current versions, one collection per resource type (Patient, Observation, …), created on the first write of that type", Indexes: specs(resourceIndexes)},
		{Collection: historyCollection, About: "every version of every resource; _id is the store-wide sequence", Indexes: specs(historyIndexes)},
		{Collection: countersCollection, About: "the version sequence and clock; _id only"},
		{Collection: metaCollection, About: "the declared keys of each record collection, for --check; _id only"},
		{Collection: "rec_<name>", About: "platform records, one collection per record kind, created on first use", Indexes: specs(recordIndexes(nil))},
		{Collection: "rec_<name>", About: "… plus one per declared key of that kind", Indexes: []IndexSpec{{Keys: "{data.<key>: 1}", Why: "Find by a declared key (multikey for arrays)"}}},
		{Collection: filesColl, About: "stored files (GridFS layout, bucket \"files\"), created on the first PutFile", Indexes: specs(fileIndexes)},
		{Collection: chunksColl, About: "the files' chunks", Indexes: specs(chunkIndexes)},
		{Collection: pendingColl, About: "uploads and deletions in progress, for cleaning up after a dead process; _id only"},
	}
}

// Finding is one problem Check found.
type Finding struct {
	Collection string
	Index      IndexSpec
	Problem    string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s %s: %s", f.Collection, f.Index, f.Problem)
}

// CheckIndexes connects to the server at uri and compares the indexes of
// the engine's collections with those it needs, creating nothing. Missing
// indexes are findings with Problem "missing"; others are notes.
func CheckIndexes(ctx context.Context, uri string, opts Options) ([]Finding, error) {
	client, _, opts, err := connect(ctx, uri, opts)
	if err != nil {
		return nil, err
	}
	defer client.Disconnect(context.Background())
	db := client.Database(opts.Database)
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	var out []Finding
	check := func(name string, ixs []index) error {
		have, err := listIndexes(ctx, db.Collection(name))
		if err != nil {
			return err
		}
		for _, ix := range ixs {
			got, ok := have[keyString(ix.keys)]
			switch {
			case !ok && ix.optional:
				out = append(out, Finding{name, ix.spec(), "absent (optional; the server may lack this kind of index)"})
			case !ok:
				out = append(out, Finding{name, ix.spec(), "missing"})
			case ix.unique && !got.unique:
				out = append(out, Finding{name, ix.spec(), "missing (exists but is not unique)"})
			case ix.ttl && !got.ttl:
				out = append(out, Finding{name, ix.spec(), "not TTL: expired records are deleted by the servers' sweepers instead"})
			}
		}
		return nil
	}
	slices.Sort(names)
	if !slices.Contains(names, historyCollection) {
		for _, ix := range historyIndexes {
			out = append(out, Finding{historyCollection, ix.spec(), "missing (no such collection yet)"})
		}
	}
	keys, err := declaredKeys(ctx, db.Collection(metaCollection))
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		var err error
		switch {
		case name == historyCollection:
			err = check(name, historyIndexes)
		case validType(name):
			err = check(name, resourceIndexes)
		case strings.HasPrefix(name, recordPrefix):
			err = check(name, recordIndexes(keys[name]))
		case name == filesColl:
			err = check(name, fileIndexes)
		case name == chunksColl:
			err = check(name, chunkIndexes)
		}
		if err != nil {
			return nil, fmt.Errorf("indexes of %s: %w", name, err)
		}
	}
	return out, nil
}

type existingIndex struct{ unique, ttl bool }

func listIndexes(ctx context.Context, c *mongo.Collection) (map[string]existingIndex, error) {
	cur, err := c.Indexes().List(ctx)
	if err != nil {
		return nil, err
	}
	var specs []struct {
		Key                bson.D `bson:"key"`
		Unique             bool   `bson:"unique"`
		ExpireAfterSeconds *int64 `bson:"expireAfterSeconds"`
	}
	if err := cur.All(ctx, &specs); err != nil {
		return nil, err
	}
	out := map[string]existingIndex{}
	for _, sp := range specs {
		out[keyString(sp.Key)] = existingIndex{unique: sp.Unique, ttl: sp.ExpireAfterSeconds != nil}
	}
	return out, nil
}

// keyString identifies a key pattern whatever numeric types the server
// returns it with.
func keyString(keys bson.D) string {
	var b strings.Builder
	for _, e := range keys {
		b.WriteString(e.Key)
		b.WriteByte('=')
		switch v := e.Value.(type) {
		case int32:
			b.WriteString(sign(float64(v)))
		case int64:
			b.WriteString(sign(float64(v)))
		case int:
			b.WriteString(sign(float64(v)))
		case float64:
			b.WriteString(sign(v))
		default:
			fmt.Fprint(&b, v)
		}
		b.WriteByte(';')
	}
	return b.String()
}

func sign(f float64) string {
	if f < 0 {
		return "-1"
	}
	return "1"
}

func formatKeys(keys bson.D) string {
	parts := make([]string, len(keys))
	for i, e := range keys {
		parts[i] = fmt.Sprintf("%s: %v", e.Key, e.Value)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
