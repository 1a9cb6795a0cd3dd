package audit_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/saaskit/saaskit/audit"
	"github.com/saaskit/saaskit/internal/dbtest"
)

const keyName = "audit.example.com"

var testSKey, testVKey = func() (string, string) {
	s, v, err := audit.GenerateNoteKey(keyName)
	if err != nil {
		panic(err)
	}
	return s, v
}()

func newSigner(t testing.TB) note.Signer {
	t.Helper()
	s, err := note.NewSigner(testSKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newVerifier(t testing.TB) note.Verifier {
	t.Helper()
	v, err := note.NewVerifier(testVKey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// memoryRoot computes the tree root of the events independently of the
// database, with tlog over an in-memory store.
func memoryRoot(t *testing.T, evs []audit.Event) tlog.Hash {
	t.Helper()
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, ev := range evs {
		hs, err := tlog.StoredHashes(int64(i), ev.Hash, r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	root, err := tlog.TreeHash(int64(len(evs)), r)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func TestCheckpointExportVerify(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		ctx := t.Context()
		s := setup(t, db)
		s.Origin = "audit.example.com"
		tenant := uuid.Must(uuid.NewV7())
		evs := record(t, db, s, tenant, 5)
		record(t, db, s, uuid.Nil, 2) // another chain, another tree

		cp1, err := s.Checkpoint(ctx, db, newSigner(t), tenant)
		if err != nil {
			t.Fatal(err)
		}
		if cp1.Size != 5 || cp1.Root != memoryRoot(t, evs) || cp1.Origin != "audit.example.com/"+tenant.String() {
			t.Fatalf("checkpoint = %+v", cp1)
		}
		n, err := note.Open(cp1.Note, note.VerifierList(newVerifier(t)))
		if err != nil || !strings.HasPrefix(n.Text, cp1.Origin+"\n5\n") {
			t.Fatalf("note: %q, %v", cp1.Note, err)
		}

		// The tree grows incrementally; the older checkpoint still holds.
		evs = append(evs, record(t, db, s, tenant, 6)...)
		cp2, err := s.Checkpoint(ctx, db, newSigner(t), tenant)
		if err != nil {
			t.Fatal(err)
		}
		if cp2.Size != 11 || cp2.Root != memoryRoot(t, evs) {
			t.Fatalf("second checkpoint = %+v", cp2)
		}
		if err := audit.VerifyCheckpoint(ctx, db, cp1); err != nil {
			t.Fatalf("VerifyCheckpoint(old): %v", err)
		}
		latest, err := audit.LatestCheckpoint(ctx, db, tenant)
		if err != nil || latest.Size != 11 || latest.Root != cp2.Root || !bytes.Equal(latest.Note, cp2.Note) {
			t.Fatalf("LatestCheckpoint = %+v, %v", latest, err)
		}
		if _, err := audit.LatestCheckpoint(ctx, db, uuid.Must(uuid.NewV7())); !errors.Is(err, audit.ErrNoCheckpoint) {
			t.Fatalf("LatestCheckpoint(none) = %v", err)
		}
		record(t, db, s, tenant, 2) // not covered by any checkpoint

		for _, cp := range []*audit.SignedCheckpoint{cp1, nil} {
			var buf bytes.Buffer
			if err := audit.Export(ctx, db, tenant, &buf, cp); err != nil {
				t.Fatalf("Export: %v", err)
			}
			res, err := audit.VerifyExport(bytes.NewReader(buf.Bytes()), newVerifier(t))
			if err != nil {
				t.Fatalf("VerifyExport: %v\n%s", err, buf.Bytes())
			}
			want := cp2
			if cp != nil {
				want = cp
			}
			if res.Size != want.Size || res.Root != want.Root || res.TenantID != tenant || res.Origin != want.Origin ||
				!bytes.Equal(res.LastHash, evs[want.Size-1].Hash) {
				t.Fatalf("VerifyExport = %+v", res)
			}
		}
		var buf bytes.Buffer
		if err := audit.Export(ctx, db, uuid.Nil, &buf, cp1); !errors.Is(err, audit.ErrBadCheckpoint) {
			t.Fatalf("Export with another tenant's checkpoint: %v", err)
		}
	})
}

// TestVerifyExportRefusesAnyEdit flips every byte of an export, one at a
// time, and expects each edit to be refused.
func TestVerifyExportRefusesAnyEdit(t *testing.T) {
	db := dbtest.SQLite(t)
	ctx := t.Context()
	s := setup(t, db)
	tenant := uuid.Must(uuid.NewV7())
	record(t, db, s, tenant, 3)
	if _, err := s.Checkpoint(ctx, db, newSigner(t), tenant); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := audit.Export(ctx, db, tenant, &buf, nil); err != nil {
		t.Fatal(err)
	}
	doc := buf.Bytes()
	v := newVerifier(t)
	if _, err := audit.VerifyExport(bytes.NewReader(doc), v); err != nil {
		t.Fatalf("VerifyExport: %v", err)
	}
	events := bytes.Index(doc, []byte(`"events":[`))
	sig := bytes.Index(doc, []byte(`\u2014 `)) // the signature line of the note
	if sig < 0 {
		sig = bytes.Index(doc, []byte("— "))
	}
	if events < 0 || sig < 0 {
		t.Fatalf("unexpected export layout:\n%s", doc)
	}
	for _, mask := range []byte{0x01, 0x20, 0x80} {
		for i := range doc {
			edited := bytes.Clone(doc)
			edited[i] ^= mask
			if _, err := audit.VerifyExport(bytes.NewReader(edited), v); !errors.Is(err, audit.ErrBadExport) {
				part := "header"
				switch {
				case i >= events:
					part = "events"
				case i >= sig:
					part = "signature"
				}
				t.Fatalf("byte %d (%s, %q^%#x) edited: err = %v", i, part, doc[i], mask, err)
			}
		}
	}

	// A valid export, verified with another key.
	_, otherKey, _ := audit.GenerateNoteKey(keyName)
	other, _ := note.NewVerifier(otherKey)
	if _, err := audit.VerifyExport(bytes.NewReader(doc), other); !errors.Is(err, audit.ErrBadExport) {
		t.Fatalf("another key: %v", err)
	}

	// An event removed from the end, or from the middle.
	lines := bytes.Split(doc, []byte("\n"))
	short := bytes.Join(append(append([][]byte{}, lines[:3]...), lines[4:]...), []byte("\n"))
	short = bytes.Replace(short, []byte("},\n]}"), []byte("}\n]}"), 1)
	if _, err := audit.VerifyExport(bytes.NewReader(short), v); !errors.Is(err, audit.ErrBadExport) {
		t.Fatalf("last event removed: %v", err)
	}
	middle := bytes.Join(append(append([][]byte{}, lines[:2]...), lines[3:]...), []byte("\n"))
	var ce *audit.ChainError
	if _, err := audit.VerifyExport(bytes.NewReader(middle), v); !errors.As(err, &ce) || ce.Seq != 2 {
		t.Fatalf("middle event removed: %v", err)
	}
}

func TestCheckpointRefusesBrokenChain(t *testing.T) {
	dbtest.Run(t, func(t *testing.T, db *dbtest.DB) {
		ctx := t.Context()
		s := setup(t, db)
		tenant := uuid.Must(uuid.NewV7())
		record(t, db, s, tenant, 4)
		cp, err := s.Checkpoint(ctx, db, newSigner(t), tenant)
		if err != nil {
			t.Fatal(err)
		}
		record(t, db, s, tenant, 4)
		dropTrigger(t, db, "audit_events_no_update", "audit_events")
		if _, err := db.NewRaw("UPDATE audit_events SET action = 'x' WHERE pos = (SELECT pos FROM audit_chain WHERE tenant_id = ? AND seq = 6)", tenant).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		var ce *audit.ChainError
		if _, err := s.Checkpoint(ctx, db, newSigner(t), tenant); !errors.As(err, &ce) || ce.Seq != 6 {
			t.Fatalf("Checkpoint over a broken chain: %v", err)
		}
		if got, err := audit.LatestCheckpoint(ctx, db, tenant); err != nil || got.Size != 4 {
			t.Fatalf("LatestCheckpoint = %+v, %v", got, err)
		}
		// The old checkpoint's part of the log is still whole.
		if err := audit.VerifyCheckpoint(ctx, db, cp); err != nil {
			t.Fatalf("VerifyCheckpoint(old): %v", err)
		}
		if err := audit.Export(ctx, db, tenant, new(bytes.Buffer), cp); err != nil {
			t.Fatalf("Export(old): %v", err)
		}

		// Rewritten tree hashes are caught against the signed root: an inner
		// node by VerifyCheckpoint, a leaf by Export's proofs.
		dropTrigger(t, db, "audit_tree_hashes_no_update", "audit_tree_hashes")
		rewrite := func(idx int64) {
			t.Helper()
			if _, err := db.NewRaw("UPDATE audit_tree_hashes SET hash = ? WHERE tenant_id = ? AND idx = ?", bytes.Repeat([]byte{1}, 32), tenant, idx).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		rewrite(tlog.StoredHashIndex(0, 0))
		if err := audit.Export(ctx, db, tenant, new(bytes.Buffer), cp); !errors.Is(err, audit.ErrBadCheckpoint) {
			t.Fatalf("Export after a leaf rewrite: %v", err)
		}
		rewrite(tlog.StoredHashIndex(2, 0))
		if err := audit.VerifyCheckpoint(ctx, db, cp); !errors.Is(err, audit.ErrBadCheckpoint) {
			t.Fatalf("VerifyCheckpoint after a node rewrite: %v", err)
		}

		// An event edited inside the checkpoint.
		if _, err := db.NewRaw("UPDATE audit_events SET action = 'x' WHERE pos = (SELECT pos FROM audit_chain WHERE tenant_id = ? AND seq = 2)", tenant).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if err := audit.Export(ctx, db, tenant, new(bytes.Buffer), cp); !errors.As(err, &ce) || ce.Seq != 2 {
			t.Fatalf("Export over a broken chain: %v", err)
		}
	})
}
