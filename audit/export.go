package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ExportFormat is the "format" field of an export.
const ExportFormat = "saaskit-audit-export/v1"

// exportEntry is one event of an export.
type exportEntry struct {
	Event    json.RawMessage `json:"event"`
	PrevHash string          `json:"prev_hash"`
	Hash     string          `json:"hash"`
	Proof    []string        `json:"proof"`
}

// Export writes the tenant's events covered by cp (seq 1 to cp.Size) to w as
// a self-contained JSON document that [VerifyExport] checks offline with only
// the checkpoint's public key:
//
//	{"format":"saaskit-audit-export/v1","tenant_id":"...","checkpoint":"<signed note>","events":[
//	{"event":{<canonical event>},"prev_hash":"<hex>","hash":"<hex>","proof":["<hex>",...]},
//	...
//	]}
//
// Each "event" is the event's canonical encoding, byte for byte the data its
// hash covers; "proof" is the tlog inclusion proof of its leaf in the tree of
// size cp.Size. A nil cp means the tenant's latest checkpoint. Events are
// streamed from the database in batches. Export checks on the way that the
// chain links hold and that every proof leads to cp's root, and returns a
// [*ChainError] or an error wrapping [ErrBadCheckpoint] when they do not (w
// then holds a partial document).
func Export(ctx context.Context, db bun.IDB, tenantID uuid.UUID, w io.Writer, cp *SignedCheckpoint) error {
	if cp == nil {
		var err error
		if cp, err = LatestCheckpoint(ctx, db, tenantID); err != nil {
			return err
		}
	}
	if cp.TenantID != tenantID {
		return fmt.Errorf("%w: checkpoint of tenant %s, not %s", ErrBadCheckpoint, cp.TenantID, tenantID)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	header, err := encodeJSON(struct {
		Format     string `json:"format"`
		TenantID   string `json:"tenant_id"`
		Checkpoint string `json:"checkpoint"`
	}{ExportFormat, tenantID.String(), string(cp.Note)})
	if err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	bw.Write(header[:len(header)-1])
	bw.WriteString(`,"events":[`)
	r := newHashReader(ctx, db, tenantID)
	walk := newWalker()
	err = scanEvents(ctx, db, tenantID, 1, cp.Size, func(e *eventRow) error {
		if err := walk.check(e); err != nil {
			return err
		}
		canon, err := e.canonical()
		if err != nil {
			return err
		}
		proof, err := tlog.ProveRecord(cp.Size, e.Seq-1, r)
		if err != nil {
			return fmt.Errorf("audit: export: proof of event %d: %w", e.Seq, err)
		}
		if err := tlog.CheckRecord(proof, cp.Size, cp.Root, e.Seq-1, LeafHash(e.Hash)); err != nil {
			return fmt.Errorf("%w: stored tree gives no valid proof of event %d: %v", ErrBadCheckpoint, e.Seq, err)
		}
		entry := exportEntry{
			Event:    canon,
			PrevHash: hex.EncodeToString(e.PrevHash),
			Hash:     hex.EncodeToString(e.Hash),
			Proof:    make([]string, len(proof)),
		}
		for i, h := range proof {
			entry.Proof[i] = hex.EncodeToString(h[:])
		}
		line, err := encodeJSON(entry)
		if err != nil {
			return fmt.Errorf("audit: export: %w", err)
		}
		if e.Seq > 1 {
			bw.WriteByte(',')
		}
		bw.WriteByte('\n')
		bw.Write(line)
		return nil
	})
	if err != nil {
		return err
	}
	if walk.next != cp.Size+1 {
		return &ChainError{Seq: walk.next, Reason: ReasonSequenceGap}
	}
	bw.WriteString("\n]}\n")
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("audit: export: %w", err)
	}
	return nil
}

// ExportResult is what [VerifyExport] verified.
type ExportResult struct {
	// TenantID is the tenant the export and its checkpoint belong to.
	TenantID uuid.UUID
	// Origin is the checkpoint's origin line; check that it names the
	// deployment you expect.
	Origin string
	// Size and Root are the signed tree; Size is also the number of events
	// verified.
	Size int64
	Root tlog.Hash
	// LastHash is the chain hash of the last event (nil for an empty log).
	LastHash []byte
}

// VerifyExport reads an export written by [Export] and verifies it offline
// with the deployment's public key: the checkpoint's signature by verifier
// and its origin (which must end in "/" + the export's tenant id), then for
// every event that it is in canonical form, belongs to the tenant, follows
// the previous one in seq order, links to its hash, hashes to its stated
// hash, and is included in the signed tree by its proof; and last that the
// export holds exactly as many events as the checkpoint covers. It reads r
// as a stream, one event at a time.
//
// Every object in the document must be byte for byte what Export writes for
// its content (whitespace between events aside), so that an edited export is
// refused even where the edit would not change a hash. Errors wrap
// [ErrBadExport], and also a [*ChainError] for a broken link.
func VerifyExport(r io.Reader, verifier note.Verifier) (ExportResult, error) {
	var res ExportResult
	fail := func(format string, args ...any) (ExportResult, error) {
		return res, fmt.Errorf("%w: "+format, append([]any{ErrBadExport}, args...)...)
	}
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	expect := func(want json.Token) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		if tok != want {
			return fmt.Errorf("found %v where %v belongs", tok, want)
		}
		return nil
	}
	str := func(key string) (string, error) {
		if err := expect(key); err != nil {
			return "", err
		}
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		s, ok := tok.(string)
		if !ok {
			return "", fmt.Errorf("%s is not a string", key)
		}
		return s, nil
	}
	if err := expect(json.Delim('{')); err != nil {
		return fail("%v", err)
	}
	format, err := str("format")
	if err != nil {
		return fail("%v", err)
	}
	if format != ExportFormat {
		return fail("format %q, want %q", format, ExportFormat)
	}
	tid, err := str("tenant_id")
	if err != nil {
		return fail("%v", err)
	}
	tenantID, err := uuid.Parse(tid)
	if err != nil || tenantID.String() != tid {
		return fail("tenant_id %q is not a UUID in canonical form", tid)
	}
	res.TenantID = tenantID
	msg, err := str("checkpoint")
	if err != nil {
		return fail("%v", err)
	}
	n, err := note.Open([]byte(msg), note.VerifierList(verifier))
	if err != nil {
		return fail("checkpoint: %v", err)
	}
	if err := canonicalSignatures(msg); err != nil {
		return fail("checkpoint: %v", err)
	}
	origin, size, root, err := parseCheckpoint(n.Text)
	if err != nil {
		return fail("checkpoint: %v", err)
	}
	if !strings.HasSuffix(origin, "/"+tid) {
		return fail("checkpoint origin %q is not for tenant %s", origin, tid)
	}
	res.Origin, res.Size, res.Root = origin, size, root
	if err := expect("events"); err != nil {
		return fail("%v", err)
	}
	if err := expect(json.Delim('[')); err != nil {
		return fail("%v", err)
	}
	prev := genesis
	var count int64
	for dec.More() {
		seq := count + 1
		if seq > size {
			return fail("more events than the checkpoint's %d", size)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fail("event %d: %v", seq, err)
		}
		var entry exportEntry
		if err := strictDecode(raw, &entry); err != nil {
			return fail("event %d: %v", seq, err)
		}
		var ev canonicalEvent
		if err := strictDecode(entry.Event, &ev); err != nil {
			return fail("event %d: %v", seq, err)
		}
		if ev.V != canonicalVersion {
			return fail("event %d: canonical version %d", seq, ev.V)
		}
		id, _ := uuid.Parse(ev.ID)
		if ev.TenantID != tid {
			return fail("event %d belongs to tenant %q", seq, ev.TenantID)
		}
		if ev.Seq != seq {
			return res, fmt.Errorf("%w: %w", ErrBadExport, &ChainError{Seq: seq, Reason: ReasonSequenceGap})
		}
		prevHash, err1 := decodeHex(entry.PrevHash)
		hash, err2 := decodeHex(entry.Hash)
		if err1 != nil || err2 != nil || len(hash) != sha256.Size {
			return fail("event %d: malformed hash", seq)
		}
		if !bytes.Equal(prevHash, prev) {
			return res, fmt.Errorf("%w: %w", ErrBadExport, &ChainError{Seq: seq, EventID: id, Reason: ReasonPrevHashMismatch})
		}
		if !bytes.Equal(chainHash(prev, entry.Event), hash) {
			return res, fmt.Errorf("%w: %w", ErrBadExport, &ChainError{Seq: seq, EventID: id, Reason: ReasonHashMismatch})
		}
		proof := make(tlog.RecordProof, len(entry.Proof))
		for i, p := range entry.Proof {
			b, err := decodeHex(p)
			if err != nil || len(b) != tlog.HashSize {
				return fail("event %d: malformed proof", seq)
			}
			proof[i] = tlog.Hash(b)
		}
		if err := tlog.CheckRecord(proof, size, root, seq-1, LeafHash(hash)); err != nil {
			return fail("event %d is not in the signed tree: %v", seq, err)
		}
		prev = hash
		count++
	}
	if err := expect(json.Delim(']')); err != nil {
		return fail("%v", err)
	}
	if err := expect(json.Delim('}')); err != nil {
		return fail("%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fail("data after the document")
	}
	if count != size {
		return fail("%d events, the checkpoint covers %d", count, size)
	}
	if count > 0 {
		res.LastHash = prev
	}
	return res, nil
}

// strictDecode decodes raw into v, refusing unknown fields, and checks that
// raw is exactly the encoding of what it decoded to.
func strictDecode(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	again, err := encodeJSON(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, raw) {
		return errors.New("not in canonical form")
	}
	return nil
}

// decodeHex decodes lowercase hexadecimal, refusing any other spelling.
func decodeHex(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if hex.EncodeToString(b) != s {
		return nil, errors.New("hex not in lowercase")
	}
	return b, nil
}

// canonicalSignatures checks that the base64 of every signature line of a
// signed note is in canonical form, which note.Open does not require.
func canonicalSignatures(msg string) error {
	_, sigs, ok := strings.Cut(msg, "\n\n")
	if !ok {
		return errors.New("no signatures")
	}
	for _, line := range strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") {
		i := strings.LastIndexByte(line, ' ')
		b, err := base64.StdEncoding.DecodeString(line[i+1:])
		if err != nil || base64.StdEncoding.EncodeToString(b) != line[i+1:] {
			return errors.New("signature not in canonical base64")
		}
	}
	return nil
}
