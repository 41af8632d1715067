package cairn_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	cairn "github.com/cairn-dev/cairn/client_go"
	"github.com/cairn-dev/cairn/client_go/internal/testserver"
)

// peer runs tests/crosslang/peer.py and decodes the JSON line it prints.
func peer(t *testing.T, args ...string) map[string]any {
	t.Helper()
	python := os.Getenv("CAIRN_PYTHON")
	if python == "" {
		python = "python3"
	}
	script := filepath.Join(testserver.RepoRoot(), "tests", "crosslang", "peer.py")
	cmd := exec.Command(python, append([]string{script}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("peer.py %v: %v\n%s", args, err, stderr.String())
	}
	var line map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(out), &line); err != nil {
		t.Fatalf("peer.py %v printed %q: %v", args, out, err)
	}
	return line
}

func b64(t *testing.T, v any) []byte {
	t.Helper()
	s, _ := v.(string)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("state_b64 %q: %v", s, err)
	}
	return b
}

func jsonEqual(t *testing.T, a, b []byte) {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(x, y) {
		t.Fatalf("decoded JSON differs:\n%v\n%v", x, y)
	}
}

func TestCrossLanguagePython(t *testing.T) {
	root := testserver.RepoRoot()
	canonical, err := os.ReadFile(filepath.Join(root, "tests", "crosslang", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := dial(t)

	t.Run("python saves, go loads", func(t *testing.T) {
		th := thread(t)
		saved := peer(t, "save", "--target", target, "--thread", th)
		got, err := c.Load(ctx, cairn.Ref{ThreadID: th, ID: saved["checkpoint_id"].(string)})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.State, canonical) || !bytes.Equal(got.State, b64(t, saved["state_b64"])) {
			t.Fatalf("state bytes differ from state.json:\n%q\n%q", got.State, canonical)
		}
		jsonEqual(t, got.State, canonical)
		if got.StateType != "json" || got.NodeName != "py" || !reflect.DeepEqual(got.NextNodes, []string{"next"}) ||
			got.Metadata["lang"] != "python" {
			t.Fatalf("checkpoint saved by python: %+v", got)
		}
	})

	t.Run("go saves, python loads", func(t *testing.T) {
		th := thread(t)
		res, err := c.Save(ctx, &cairn.Checkpoint{ThreadID: th, State: canonical, StateType: "json",
			Metadata: map[string]any{"lang": "go"}, NodeName: "go", NextNodes: []string{"next"}})
		if err != nil {
			t.Fatal(err)
		}
		loaded := peer(t, "load", "--target", target, "--thread", th, "--checkpoint", res.CheckpointID)
		if loaded["checkpoint_id"] != res.CheckpointID || !bytes.Equal(b64(t, loaded["state_b64"]), canonical) {
			t.Fatalf("python loaded %v", loaded)
		}
		md, _ := loaded["metadata"].(map[string]any)
		if loaded["state_type"] != "json" || loaded["node_name"] != "go" || md["lang"] != "go" {
			t.Fatalf("python loaded %v", loaded)
		}
	})
}
