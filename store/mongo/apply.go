package mongo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/fhirgraph/fhirgraph/store"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// errRace reports that a concurrent write changed a resource between an
// Apply's read and its compare-and-set; the Apply starts again from the
// read, where the other write is seen (and an If-Match or a create then
// fails as it should).
var errRace = errors.New("mongo store: a concurrent write changed the resource")

// maxAttempts bounds the retries of an Apply that keeps losing races.
const maxAttempts = 50

// Apply performs writes atomically. Every write is a compare-and-set on the
// current document (the version read must still be there), followed by the
// insertion of the version into history.
//
// On a server with transactions both happen in one multi-document
// transaction, whatever the number of writes. On a standalone server an
// Apply takes one write: the current document changes first, then history
// receives the version (VRead bridges the moment in between; a crash there
// loses that version from type and system history). An Apply of more than
// one write fails there with store.ErrUnsupported, having written nothing;
// see ApplyEach for independent writes.
func (s *Store) Apply(ctx context.Context, writes []store.Write) ([]store.Result, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if len(writes) == 0 {
		return nil, nil
	}
	for i, w := range writes {
		if err := checkWrite(w); err != nil {
			return nil, &store.WriteError{Index: i, Write: w, Err: err}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(writes) > 1 && !s.txn {
		return nil, errTransactions
	}
	res, err := s.apply(ctx, writes)
	return res, s.fail(ctx, err)
}

// apply runs checked writes as one unit until it does not lose a race.
func (s *Store) apply(ctx context.Context, writes []store.Write) ([]store.Result, error) {
	for _, w := range writes {
		if err := s.ensureType(ctx, w.Type); err != nil {
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		var res []store.Result
		var err error
		if s.txn {
			res, err = s.inTransaction(ctx, writes)
		} else {
			res, err = s.applyOnce(ctx, ctx, writes)
		}
		if !errors.Is(err, errRace) {
			return res, err
		}
		if attempt == maxAttempts {
			return nil, &store.WriteError{Index: 0, Write: writes[0], Err: fmt.Errorf("%w: still changing under concurrent writes after %d attempts", store.ErrConflict, attempt)}
		}
		if err := backoff(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

func (s *Store) inTransaction(ctx context.Context, writes []store.Write) ([]store.Result, error) {
	sess, err := s.client.StartSession()
	if err != nil {
		return nil, err
	}
	defer sess.EndSession(context.WithoutCancel(ctx))
	out, err := sess.WithTransaction(ctx, func(tx context.Context) (any, error) {
		return s.applyOnce(tx, ctx, writes)
	})
	if err != nil {
		return nil, err
	}
	return out.([]store.Result), nil
}

// backoff sleeps a little, more after each lost race, so that writers
// competing for one resource spread out.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(min(attempt, 20))*int64(time.Millisecond)) + 1)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func checkWrite(w store.Write) error {
	switch {
	case w.Type == "" || w.ID == "":
		return errors.New("write needs a type and an id")
	case !validType(w.Type):
		return fmt.Errorf("invalid resource type %q", w.Type)
	case w.Op != store.OpCreate && w.Op != store.OpUpdate && w.Op != store.OpDelete:
		return fmt.Errorf("unknown write operation %v", w.Op)
	case w.Op != store.OpDelete && w.Stamp == nil:
		return errors.New("write needs a Stamp function")
	}
	return nil
}

type resKey struct{ typ, id string }

// resState is a resource as the Apply in progress sees it.
type resState struct {
	typ, id string
	loaded  *currentDoc // as read; nil when it did not exist

	exists  bool
	version int64
	deleted bool
	hash    string
	// practice and compartments are the membership of the newest live
	// version.
	practice     string
	compartments []string
	last         *pending // the newest version this Apply made, if any
	made         int      // how many versions this Apply made
}

// pending is a version an Apply makes.
type pending struct {
	index      int // of its write
	w          store.Write
	st         *resState
	version    int64
	created    bool
	deleted    bool
	occurrence int // versions of the same resource made before it here
	seq        int64
	at         time.Time
	body       string
	// practice and compartments are, for a deletion, the last live
	// version's.
	practice     string
	compartments []string
}

// step is what one write does: make a version, or leave the resource as
// it is (from: the version this Apply made, else what was loaded).
type step struct {
	ver  *pending
	st   *resState
	from *pending
}

// plan holds an Apply's view of its resources and what its writes do.
type plan struct {
	states map[resKey]*resState
	order  []*resState // first written first
	vers   []*pending
	steps  []step
}

// applyOnce reads the resources the writes touch, decides what each write
// does, stamps the new versions and writes them. ctx carries the
// transaction, if any; outer does not, for the sequence counter, whose
// increments must not wait for (or roll back with) the transaction.
func (s *Store) applyOnce(ctx, outer context.Context, writes []store.Write) ([]store.Result, error) {
	p, err := s.load(ctx, writes)
	if err != nil {
		return nil, err
	}
	for i, w := range writes {
		if err := p.add(i, w); err != nil {
			return nil, &store.WriteError{Index: i, Write: w, Err: err}
		}
	}
	if len(p.vers) > 0 {
		if err := s.number(outer, p.vers); err != nil {
			return nil, err
		}
		for _, v := range p.vers {
			if err := v.stamp(ctx); err != nil {
				return nil, err
			}
		}
		if err := s.writeVersions(ctx, outer, p); err != nil {
			return nil, err
		}
	}
	return p.results(), nil
}

// load reads the current documents of the resources writes touch, with
// their bodies when an IfChanged write may report one unchanged.
func (s *Store) load(ctx context.Context, writes []store.Write) (*plan, error) {
	p := &plan{states: map[resKey]*resState{}}
	byType := map[string][]string{}
	needBody := map[string]bool{}
	var types []string
	for _, w := range writes {
		k := resKey{w.Type, w.ID}
		if w.IfChanged {
			needBody[w.Type] = true
		}
		if _, ok := p.states[k]; ok {
			continue
		}
		p.states[k] = &resState{typ: w.Type, id: w.ID}
		if _, ok := byType[w.Type]; !ok {
			types = append(types, w.Type)
		}
		byType[w.Type] = append(byType[w.Type], w.ID)
	}
	for _, typ := range types {
		docs, err := s.loadType(ctx, typ, byType[typ], needBody[typ])
		if err != nil {
			return nil, err
		}
		for _, d := range docs {
			st := p.states[resKey{typ, d.ID}]
			st.loaded = d
			st.exists, st.version, st.deleted, st.hash, st.practice = true, d.Version, d.Deleted, d.Hash, d.Practice
			st.compartments = d.Compartments
		}
	}
	return p, nil
}

func (s *Store) loadType(ctx context.Context, typ string, ids []string, body bool) ([]*currentDoc, error) {
	proj := bson.D{{Key: "idx", Value: 0}, {Key: "rng", Value: 0}}
	if !body {
		proj = append(proj, bson.E{Key: "body", Value: 0})
	}
	c := s.db.Collection(typ)
	if len(ids) == 1 {
		var d currentDoc
		err := c.FindOne(ctx, bson.D{{Key: "_id", Value: ids[0]}}, options.FindOne().SetProjection(proj)).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []*currentDoc{&d}, nil
	}
	cur, err := c.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}}, options.Find().SetProjection(proj))
	if err != nil {
		return nil, err
	}
	var docs []*currentDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, err
	}
	return docs, nil
}

// add decides what write i does, against the state the writes before it
// left.
func (p *plan) add(i int, w store.Write) error {
	st := p.states[resKey{w.Type, w.ID}]
	if w.IfMatch != 0 && (!st.exists || st.version != w.IfMatch) {
		if !st.exists {
			return fmt.Errorf("%w: %s/%s does not exist, expected version %d", store.ErrConflict, w.Type, w.ID, w.IfMatch)
		}
		return fmt.Errorf("%w: %s/%s is at version %d, expected %d", store.ErrConflict, w.Type, w.ID, st.version, w.IfMatch)
	}
	switch w.Op {
	case store.OpCreate:
		if st.exists {
			return fmt.Errorf("%w: %s/%s", store.ErrExists, w.Type, w.ID)
		}
	case store.OpUpdate:
		if st.exists && !st.deleted && w.IfChanged && w.Hash != "" && w.Hash == st.hash {
			p.steps = append(p.steps, step{st: st, from: st.last})
			return nil
		}
	case store.OpDelete:
		if !st.exists {
			return fmt.Errorf("%w: %s/%s", store.ErrNotFound, w.Type, w.ID)
		}
		if st.deleted {
			p.steps = append(p.steps, step{st: st, from: st.last})
			return nil
		}
	}
	v := &pending{
		index: i, w: w, st: st,
		version:    st.version + 1,
		deleted:    w.Op == store.OpDelete,
		created:    w.Op != store.OpDelete && (!st.exists || st.deleted),
		occurrence: st.made,
	}
	if st.made == 0 {
		p.order = append(p.order, st)
	}
	st.made++
	st.exists, st.version, st.deleted, st.last = true, v.version, v.deleted, v
	st.hash = ""
	if !v.deleted {
		st.hash, st.practice = w.Hash, w.Practice
		st.compartments = slices.Compact(slices.Sorted(slices.Values(w.Compartments)))
	}
	v.practice, v.compartments = st.practice, st.compartments
	p.vers = append(p.vers, v)
	p.steps = append(p.steps, step{ver: v, st: st})
	return nil
}

// stamp asks a version's write for its stamped body. A failing Stamp is a
// *store.WriteError; a context that ended meanwhile, its error.
func (v *pending) stamp(ctx context.Context) error {
	if v.deleted {
		return ctx.Err()
	}
	body, err := v.w.Stamp(v.version, v.at)
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	if err != nil {
		return &store.WriteError{Index: v.index, Write: v.w, Err: fmt.Errorf("stamp: %w", err)}
	}
	v.body = string(body)
	return nil
}

// results reports what each write did.
func (p *plan) results() []store.Result {
	out := make([]store.Result, len(p.steps))
	for i, st := range p.steps {
		if v := st.ver; v != nil {
			out[i] = store.Result{Resource: v.resource(), Created: v.created}
			continue
		}
		var r store.Resource
		if st.from != nil {
			r = st.from.resource()
		} else {
			d := st.st.loaded
			r = store.Resource{Type: st.st.typ, ID: st.st.id, VersionID: d.Version, LastUpdated: d.LastUpdated.UTC(), Deleted: d.Deleted}
			if !d.Deleted {
				r.Body = []byte(d.Body)
			}
		}
		out[i] = store.Result{Resource: r, Unchanged: true}
	}
	return out
}

func (v *pending) resource() store.Resource {
	r := store.Resource{Type: v.w.Type, ID: v.w.ID, VersionID: v.version, LastUpdated: v.at, Deleted: v.deleted}
	if !v.deleted {
		r.Body = []byte(v.body)
	}
	return r
}
