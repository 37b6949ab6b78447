package doccheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A block is one ```go block of a Markdown file.
type block struct {
	line int // line of the file where the code starts (after the fence)
	code string
}

// goBlocks returns the ```go blocks of md, in order.
func goBlocks(md []byte) []block {
	var out []block
	var cur *block
	var lines []string
	for i, l := range strings.Split(string(md), "\n") {
		switch {
		case cur == nil && strings.TrimSpace(l) == "```go":
			cur, lines = &block{line: i + 2}, nil
		case cur != nil && strings.TrimSpace(l) == "```":
			cur.code = strings.Join(lines, "\n") + "\n"
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			lines = append(lines, l)
		}
	}
	return out
}

// complete says whether a block is a whole program: its first line that is
// neither blank nor a comment is a package clause.
func complete(b block) bool {
	for _, l := range strings.Split(b.code, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "//") {
			continue
		}
		return strings.HasPrefix(l, "package ")
	}
	return false
}

// markerRE is the first line of a fragment: the runnable example it comes from.
var markerRE = regexp.MustCompile(`^// Complete version: (Example\w*) in ([\w./-]+_test\.go)$`)

// checkFragment checks a fragment against the example its first line
// names: the example exists in that file under root, runs under go test (it
// has an Output comment), and holds every non-blank line of the fragment,
// in order (each compared without its indentation).
func checkFragment(root string, b block) error {
	lines := strings.Split(strings.TrimRight(b.code, "\n"), "\n")
	m := markerRE.FindStringSubmatch(strings.TrimSpace(lines[0]))
	if m == nil {
		return fmt.Errorf("README.md:%d: a Go fragment must start with %q naming the runnable example it is taken from (or be a complete program starting with a package clause)",
			b.line, "// Complete version: ExampleName in dir/file_test.go")
	}
	name, file := m[1], m[2]
	src, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	if err != nil {
		return fmt.Errorf("README.md:%d: %v", b.line, err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return fmt.Errorf("README.md:%d: %v", b.line, err)
	}
	var fn *ast.FuncDecl
	for _, d := range f.Decls {
		if d, ok := d.(*ast.FuncDecl); ok && d.Recv == nil && d.Name.Name == name {
			fn = d
		}
	}
	if fn == nil || fn.Body == nil {
		return fmt.Errorf("README.md:%d: %s has no function %s", b.line, file, name)
	}
	body := string(src[fset.Position(fn.Body.Pos()).Offset:fset.Position(fn.Body.End()).Offset])
	if !regexp.MustCompile(`(?m)^\s*// (Unordered output|Output):`).MatchString(body) {
		return fmt.Errorf("README.md:%d: %s in %s has no Output comment, so go test compiles it but never runs it", b.line, name, file)
	}
	var have []string
	for _, l := range strings.Split(body, "\n") {
		have = append(have, strings.TrimSpace(l))
	}
	next := 0
	for i, l := range lines[1:] {
		want := strings.TrimSpace(l)
		if want == "" {
			continue
		}
		for next < len(have) && have[next] != want {
			next++
		}
		if next == len(have) {
			return fmt.Errorf("README.md:%d: this line of the fragment is not in %s (%s), or not in the same order: %q",
				b.line+1+i, name, file, want)
		}
		next++
	}
	return nil
}

// buildPrograms writes each complete block into its own package under a
// directory of root whose name starts with "_" (so ./... ignores it), with
// a line directive so that errors name the README's own lines, and runs go
// build and go vet on them. It returns the go command's output on failure.
func buildPrograms(t *testing.T, root, readme string, blocks []block) error {
	t.Helper()
	dir, err := os.MkdirTemp(root, "_doccheck-readme-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var pkgs []string
	for i, b := range blocks {
		pkg := filepath.Join(dir, fmt.Sprintf("block%d", i+1))
		if err := os.Mkdir(pkg, 0o755); err != nil {
			t.Fatal(err)
		}
		src := fmt.Sprintf("//line %s:%d\n%s", readme, b.line, b.code)
		if err := os.WriteFile(filepath.Join(pkg, "main.go"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, "./"+filepath.ToSlash(must(filepath.Rel(root, pkg))))
	}
	bin := t.TempDir() + string(filepath.Separator) // go build writes the programs there, not into root
	for _, args := range [][]string{{"build", "-o", bin}, {"vet"}} {
		cmd := exec.Command("go", append(args, pkgs...)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s of the README's complete programs: %v\n%s", args[0], err, out)
		}
	}
	return nil
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestReadmeGoBlocks: every ```go block of README.md builds (a complete
// program) or matches the runnable example it names (a fragment).
func TestReadmeGoBlocks(t *testing.T) {
	root := moduleRoot(t)
	readme := filepath.Join(root, "README.md")
	md, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(md)
	var programs []block
	fragments := 0
	for _, b := range blocks {
		if complete(b) {
			programs = append(programs, b)
			continue
		}
		fragments++
		if err := checkFragment(root, b); err != nil {
			t.Error(err)
		}
	}
	if len(programs) == 0 || fragments == 0 {
		t.Errorf("README.md has %d complete programs and %d fragments in %d Go blocks; the Quick example is a program and the Do section a fragment", len(programs), fragments, len(blocks))
	}
	if err := buildPrograms(t, root, readme, programs); err != nil {
		t.Error(err)
	}
}

// TestReadmeCheckerCatches shows the README check failing: a program that
// does not compile, one that vet rejects, and fragments that drifted from
// their example.
func TestReadmeCheckerCatches(t *testing.T) {
	root := moduleRoot(t)
	readme := filepath.Join(root, "README.md")
	t.Run("program does not compile", func(t *testing.T) {
		md := []byte("# x\n\ntext\n\n```go\npackage main\n\nimport \"github.com/quorumlock/quorumlock/redlock\"\n\nfunc main() {\n\tredlock.NoSuchFunction()\n}\n```\n")
		err := buildPrograms(t, root, readme, goBlocks(md))
		// The error names the README's line 11, where the call is.
		if err == nil || !strings.Contains(err.Error(), "README.md:11") || !strings.Contains(err.Error(), "NoSuchFunction") {
			t.Fatalf("build of a broken block = %v, want an error at README.md:11 naming NoSuchFunction", err)
		}
	})
	t.Run("program vet rejects", func(t *testing.T) {
		md := []byte("```go\npackage main\n\nimport \"fmt\"\n\nfunc main() {\n\tfmt.Printf(\"%d\\n\", \"not a number\")\n}\n```\n")
		err := buildPrograms(t, root, readme, goBlocks(md))
		if err == nil || !strings.Contains(err.Error(), "go vet") || !strings.Contains(err.Error(), "README.md:7") {
			t.Fatalf("vet of a bad Printf = %v, want go vet to fail at README.md:7", err)
		}
	})
	t.Run("programs that build", func(t *testing.T) {
		md := []byte("```go\npackage main\n\nimport \"github.com/quorumlock/quorumlock/redlock\"\n\nfunc main() { _ = redlock.ErrNotAcquired }\n```\n")
		if err := buildPrograms(t, root, readme, goBlocks(md)); err != nil {
			t.Fatalf("a correct program: %v", err)
		}
	})

	const marker = "// Complete version: ExampleClient_Do_readme in redlock/example_readme_test.go\n"
	for _, tc := range []struct {
		name, code, want string // want: "" for no error, else a substring of it
	}{
		{"fragment matches", marker + "err := client.Do(ctx, \"migration\", func(ctx context.Context) error {\n\n\treturn migrate(ctx)\n", ""},
		{"no marker", "err := client.Do(ctx, \"migration\", nil)\n", "must start with"},
		{"line not in the example", marker + "err := client.Do(ctx, \"migration\", func(ctx context.Context) error {\n\treturn migrateTwice(ctx)\n", "README.md:42: this line of the fragment is not in ExampleClient_Do_readme"},
		{"lines out of order", marker + "return migrate(ctx)\nerr := client.Do(ctx, \"migration\", func(ctx context.Context) error {\n", "not in the same order"},
		{"no such example", strings.Replace(marker, "ExampleClient_Do_readme", "ExampleGone", 1) + "x\n", "has no function ExampleGone"},
		{"no such file", strings.Replace(marker, "example_readme_test.go", "gone_test.go", 1) + "x\n", "gone_test.go"},
		{"example that never runs", "// Complete version: ExampleSilent in x/x_test.go\nx := 1\n", "no Output comment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := root
			if strings.Contains(tc.code, "ExampleSilent") { // a repository of one file
				dir = t.TempDir()
				if err := os.Mkdir(filepath.Join(dir, "x"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "x", "x_test.go"), []byte("package x\n\nfunc ExampleSilent() {\n\tx := 1\n\t_ = x\n}\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := checkFragment(dir, block{line: 40, code: tc.code})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("checkFragment = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("checkFragment = %v, want an error containing %q", err, tc.want)
			}
		})
	}

	blocks := goBlocks([]byte("a\n```go\npackage main\n```\n\n```sh\nls\n```\n```go\nx := 1\n```\n"))
	if len(blocks) != 2 || blocks[0].line != 3 || !complete(blocks[0]) || blocks[1].line != 10 || complete(blocks[1]) {
		t.Fatalf("goBlocks = %+v, want a program at line 3 and a fragment at line 10", blocks)
	}
}
