package doccheck

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// sections are the letters of the rule sections of ALGORITHM.md; rules of
// exempt need no test (deployment: documented and checked by Client.Check).
const (
	sections = "AHERFNCLOMVS"
	exempt   = "N"
)

// citeRE finds a rule id, or a range of them (A1-A10), standing alone.
var citeRE = regexp.MustCompile(`\b([` + sections + `])([0-9]{1,2})\b(?:\s*[-–]\s*([` + sections + `])([0-9]{1,2})\b)?`)

// A rule as ALGORITHM.md defines it.
type rule struct {
	id    string
	line  int      // of its heading
	tests []string // the functions its Tests line names, as dir.Func
	// hasTests says whether the rule has a Tests line at all.
	hasTests bool
}

var (
	ruleHeadRE = regexp.MustCompile(`^### ([` + sections + `][0-9]{1,2})\. \S`)
	headRE     = regexp.MustCompile(`^#{1,3} `)
	testsRE    = regexp.MustCompile(`^\*\*Tests?:\*\*`)
	testRefRE  = regexp.MustCompile("`([A-Za-z0-9_./-]+\\.(?:Test|Example|Fuzz)[A-Za-z0-9_]*)`")
)

// parseRules reads the rule definitions of ALGORITHM.md: a heading
// "### A7. Title" defines A7, and the first line starting with "**Tests:**"
// before the next heading lists, in backquotes, the functions that prove it
// (dir.Func, dir relative to the module root). Problems in the document
// itself (a rule defined twice) come back as problems.
func parseRules(md []byte) (map[string]*rule, []string) {
	rules := map[string]*rule{}
	var problems []string
	var cur *rule
	inTests := false // in the paragraph of cur's Tests line
	for i, line := range strings.Split(string(md), "\n") {
		if m := ruleHeadRE.FindStringSubmatch(line); m != nil {
			if old, dup := rules[m[1]]; dup {
				problems = append(problems, fmt.Sprintf("ALGORITHM.md:%d: %s is defined twice (first at line %d)", i+1, m[1], old.line))
			}
			cur, inTests = &rule{id: m[1], line: i + 1}, false
			rules[m[1]] = cur
			continue
		}
		switch {
		case headRE.MatchString(line):
			cur, inTests = nil, false
			continue
		case strings.TrimSpace(line) == "":
			inTests = false
			continue
		case cur != nil && !cur.hasTests && testsRE.MatchString(line):
			cur.hasTests, inTests = true, true
		}
		if inTests { // the Tests line and the lines of its paragraph
			for _, m := range testRefRE.FindAllStringSubmatch(line, -1) {
				cur.tests = append(cur.tests, m[1])
			}
		}
	}
	return rules, problems
}

// A cite is one rule id cited at a line of a file.
type cite struct {
	id   string
	line int
	off  int // byte offset in the file
}

// citesIn returns the ids cited in text, which starts at line and byte
// offset off of its file; a range cites every id in it.
func citesIn(text string, line, off int) []cite {
	var out []cite
	for _, m := range citeRE.FindAllStringSubmatchIndex(text, -1) {
		at := line + strings.Count(text[:m[0]], "\n")
		letter := text[m[2]:m[3]]
		lo, _ := strconv.Atoi(text[m[4]:m[5]])
		hi := lo
		var second *cite // X1-Y2 with two letters is no range: two ids
		if m[6] >= 0 {
			hiLetter := text[m[6]:m[7]]
			n, _ := strconv.Atoi(text[m[8]:m[9]])
			if hiLetter == letter && n >= lo {
				hi = n
			} else {
				second = &cite{id: hiLetter + strconv.Itoa(n), line: at, off: off + m[6]}
			}
		}
		for n := lo; n <= hi; n++ {
			out = append(out, cite{id: letter + strconv.Itoa(n), line: at, off: off + m[0]})
		}
		if second != nil {
			out = append(out, *second)
		}
	}
	return out
}

// citations returns the rule ids a file cites. In Go source only comments
// and string literals count (an identifier such as C1 is not a citation);
// in the other files the whole text does.
func citations(name string, src []byte) []cite {
	if !strings.HasSuffix(name, ".go") {
		return citesIn(string(src), 1, 0)
	}
	fset := token.NewFileSet()
	file := fset.AddFile(name, -1, len(src))
	var s scanner.Scanner
	s.Init(file, src, nil, scanner.ScanComments)
	var out []cite
	for {
		pos, tok, lit := s.Scan()
		if tok == token.EOF {
			return out
		}
		if tok == token.COMMENT || tok == token.STRING || tok == token.CHAR {
			p := fset.Position(pos)
			out = append(out, citesIn(lit, p.Line, p.Offset)...)
		}
	}
}

// proofs returns, per rule id, the test functions of a _test.go file that
// cite it in their doc comment or body, as dir.Func.
func proofs(dir, name string, src []byte) (map[string][]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	cites := citations(name, src)
	out := map[string][]string{}
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || !isTestFunc(fn.Name.Name) {
			continue
		}
		start := fn.Pos()
		if fn.Doc != nil {
			start = fn.Doc.Pos()
		}
		from, to := fset.Position(start).Offset, fset.Position(fn.End()).Offset
		ref := funcRef(dir, fn.Name.Name)
		for _, c := range cites {
			if c.off >= from && c.off < to && !slices.Contains(out[c.id], ref) {
				out[c.id] = append(out[c.id], ref)
			}
		}
	}
	return out, nil
}

func isTestFunc(name string) bool {
	for _, p := range []string{"Test", "Example", "Fuzz"} {
		if rest, ok := strings.CutPrefix(name, p); ok && (rest == "" || !('a' <= rest[0] && rest[0] <= 'z')) {
			return true
		}
	}
	return false
}

// funcRef names a function of the package in dir (relative to the module
// root, slash-separated) as ALGORITHM.md does: dir.Func.
func funcRef(dir, fn string) string {
	if dir == "." || dir == "" {
		return fn
	}
	return dir + "." + fn
}

// checkRules returns every problem of the repository whose files are given
// (path relative to the module root, slash-separated, to content). It needs
// ALGORITHM.md among them.
func checkRules(files map[string][]byte) []string {
	md, ok := files["ALGORITHM.md"]
	if !ok {
		return []string{"ALGORITHM.md is missing: it defines the rules the code cites"}
	}
	rules, problems := parseRules(md)

	proved := map[string][]string{} // id -> test functions citing it
	exists := map[string]bool{}     // dir.Func of every test function
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range files {
			if !yield(name) {
				return
			}
		}
	})
	for _, name := range names {
		src := files[name]
		for _, c := range citations(name, src) {
			if _, ok := rules[c.id]; !ok {
				problems = append(problems, fmt.Sprintf("%s:%d: cites %s, which ALGORITHM.md does not define", name, c.line, c.id))
			}
		}
		if !strings.HasSuffix(name, "_test.go") {
			continue
		}
		p, err := proofs(path.Dir(name), name, src)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", name, err))
			continue
		}
		for id, fns := range p {
			proved[id] = append(proved[id], fns...)
		}
		for _, fn := range testFuncs(name, src) {
			exists[funcRef(path.Dir(name), fn)] = true
		}
	}

	ids := slices.SortedFunc(func(yield func(string) bool) {
		for id := range rules {
			if !yield(id) {
				return
			}
		}
	}, byRuleOrder)
	for _, id := range ids {
		r := rules[id]
		where := fmt.Sprintf("ALGORITHM.md:%d: %s", r.line, id)
		needsTest := !strings.Contains(exempt, id[:1])
		switch {
		case needsTest && len(proved[id]) == 0:
			problems = append(problems, fmt.Sprintf("%s: no test names it: cite %s in the doc comment or body of the Test or Example that proves it", where, id))
		case needsTest && !r.hasTests:
			problems = append(problems, fmt.Sprintf("%s: has no **Tests:** line (tests naming it: %s)", where, strings.Join(proved[id], ", ")))
		case needsTest && len(r.tests) == 0:
			problems = append(problems, fmt.Sprintf("%s: its Tests line names no test, but %s names %s: list it", where, strings.Join(proved[id], ", "), id))
		}
		for _, t := range r.tests {
			switch {
			case !exists[t]:
				problems = append(problems, fmt.Sprintf("%s: lists %s: no such test function", where, t))
			case !slices.Contains(proved[id], t):
				problems = append(problems, fmt.Sprintf("%s: lists %s, which does not name %s in its doc comment or body", where, t, id))
			}
		}
	}
	return problems
}

// byRuleOrder sorts ids by section letter, then number: A2 before A10.
func byRuleOrder(a, b string) int {
	if c := strings.Compare(a[:1], b[:1]); c != 0 {
		return c
	}
	x, _ := strconv.Atoi(a[1:])
	y, _ := strconv.Atoi(b[1:])
	return x - y
}

// testFuncs returns the names of the Test, Example and Fuzz functions of a
// test file.
func testFuncs(name string, src []byte) []string {
	f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil
	}
	var out []string
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && isTestFunc(fn.Name.Name) {
			out = append(out, fn.Name.Name)
		}
	}
	return out
}

// moduleRoot returns the directory of the go.mod of this module.
func moduleRoot(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/quorumlock/quorumlock\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("the module root (go.mod of github.com/quorumlock/quorumlock) is not above " + dir)
		}
		dir = parent
	}
}

// scanned says whether the rules check reads a file: source, scripts and
// the two documents (see the package doc).
func scanned(rel string, src []byte) bool {
	base := path.Base(rel)
	switch {
	case rel == "README.md", rel == "ALGORITHM.md", base == "Makefile", base == "Dockerfile":
		return true
	case strings.Contains(base, "."):
		ext := path.Ext(base)
		return ext == ".go" || ext == ".lua" || ext == ".sh" || ext == ".yml" || ext == ".yaml"
	}
	return bytes.HasPrefix(src, []byte("#!")) // an extensionless script such as .ci/run
}

// repoFiles reads the files of the repository the rules check scans. It
// skips .git, directories the go command ignores (names starting with "_"
// or ".", except .ci, which holds CI's script), and this package.
func repoFiles(t testing.TB, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") && name != ".ci" || name == "vendor" || name == "node_modules" || rel == "internal/doccheck") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if scanned(rel, src) {
			files[rel] = src
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestRuleCitationsAndProofs is the repository check: every rule id cited
// is defined in ALGORITHM.md, every rule outside section N is named by a
// test, and the tests ALGORITHM.md lists exist and name their rule.
func TestRuleCitationsAndProofs(t *testing.T) {
	files := repoFiles(t, moduleRoot(t))
	for _, must := range []string{"ALGORITHM.md", "README.md", "redlock/lock.go", "redlock/release.lua", "Makefile"} {
		if _, ok := files[must]; !ok {
			t.Fatalf("the scan missed %s: the walk is broken", must)
		}
	}
	for _, p := range checkRules(files) {
		t.Error(p)
	}
	// The check counted what it claims to: the repository cites rules in
	// code, scripts and the README, and tests name them.
	rules, _ := parseRules(files["ALGORITHM.md"])
	if len(rules) < 30 {
		t.Errorf("ALGORITHM.md defines %d rules; the parser found too few to be reading it", len(rules))
	}
	for _, f := range []string{"redlock/client.go", "redlock/release.lua", "testdata/chaos-broken.sh", "README.md"} {
		if len(citations(f, files[f])) == 0 {
			t.Errorf("%s: no citation found; the scanner misses the forms the repository uses", f)
		}
	}
}

// algo is a small ALGORITHM.md for the checker's own tests.
const algo = "# Rules\n\n## Acquire (A)\n\n" +
	"### A1. One\n\n**Rule.** x\n\n**Tests:** `redlock.TestOne`\n\n" +
	"### A2. Two\n\n**Tests:** `redlock.TestTwo`, `redlock.ExampleTwo`\n\n" +
	"## Deployment (N)\n\n### N1. Masters\n\n**Tests:** none; Client.Check checks it.\n"

const proving = "package redlock\n\n" +
	"// A1: one.\nfunc TestOne(t *testing.T) {}\n\n" +
	"func TestTwo(t *testing.T) {\n\t// A2 in the body counts too.\n}\n\n" +
	"func ExampleTwo() {\n\t_ = \"see A2\"\n}\n"

// TestRuleCheckerCatches shows the check failing: each case is a small
// repository with one mistake, and the check must name it.
func TestRuleCheckerCatches(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the problems, one per problem
	}{
		{"clean", nil, nil},
		{"bogus id in a Go comment", map[string]string{"redlock/x.go": "package redlock\n\n// See ALGORITHM.md A99.\nvar x = 1\n"},
			[]string{"redlock/x.go:3: cites A99, which ALGORITHM.md does not define"}},
		{"bogus id in a Go string", map[string]string{"redlock/x.go": "package redlock\n\nvar x = \"rule (H7)\"\n"},
			[]string{"redlock/x.go:3: cites H7"}},
		{"range past the last rule", map[string]string{"redlock/x.go": "package redlock\n\n// A1-A3 hold.\n"},
			[]string{"redlock/x.go:3: cites A3"}},
		{"bogus id in the README", map[string]string{"README.md": "# x\n\nDeployment rule (N9).\n"},
			[]string{"README.md:3: cites N9"}},
		{"bogus id in a Lua script", map[string]string{"redlock/x.lua": "-- x (ALGORITHM.md R7)\nreturn 0\n"},
			[]string{"redlock/x.lua:1: cites R7"}},
		{"bogus id in a shell script", map[string]string{"testdata/x.sh": "#!/bin/sh\n# breaks F9\n"},
			[]string{"testdata/x.sh:2: cites F9"}},
		{"bogus id in ALGORITHM.md", map[string]string{"ALGORITHM.md": algo + "\nSee E1.\n"},
			[]string{"ALGORITHM.md:21: cites E1"}},
		{"identifiers and words are not citations", map[string]string{
			"redlock/x.go": "package redlock\n\nvar C1, A99 = sha1(\"SHA1\"), TestA1\n",
			"README.md":    "A1 and A2, not SHA1, E2E or A100.\n",
		}, nil},
		{"rule nobody proves", map[string]string{"ALGORITHM.md": algo + "\n### A3. Three\n\n**Tests:** (being added)\n"},
			[]string{"A3: no test names it"}},
		{"deployment rule needs no test", map[string]string{"ALGORITHM.md": algo + "\n### N2. Durable\n\nNo tests line.\n"}, nil},
		{"listed test missing", map[string]string{"redlock/x_test.go": strings.Replace(proving, "TestOne", "TestUno", 1)},
			[]string{"A1: lists redlock.TestOne: no such test function"}},
		{"listed test does not name its rule", map[string]string{
			"redlock/x_test.go": strings.Replace(proving, "// A1: one.", "// one.", 1),
			"redlock/y_test.go": "package redlock\n\nfunc TestAlso(t *testing.T) {\n\tt.Log(\"A1\")\n}\n",
		}, []string{"A1: lists redlock.TestOne, which does not name A1"}},
		{"a citation outside any test proves nothing", map[string]string{
			"redlock/x_test.go": strings.Replace(proving, "// A1: one.", "// one.", 1) + "\n// A1: a helper.\nfunc helper() {}\n",
		}, []string{"A1: no test names it", "A1: lists redlock.TestOne, which does not name A1"}},
		{"proved but not listed", map[string]string{"ALGORITHM.md": algo + "\n### A3. Three\n\n**Tests:** (being added)\n",
			"redlock/y_test.go": "package redlock\n\n// A3.\nfunc TestThree(t *testing.T) {}\n"},
			[]string{"A3: its Tests line names no test, but redlock.TestThree names A3: list it"}},
		{"listed test on a continuation line", map[string]string{"ALGORITHM.md": strings.Replace(algo, "`redlock.TestTwo`, `redlock.ExampleTwo`", "`redlock.TestTwo`,\n`redlock.TestGone`", 1)},
			[]string{"A2: lists redlock.TestGone: no such test function"}},
		{"defined twice", map[string]string{"ALGORITHM.md": algo + "\n### A2. Again\n\n**Tests:** `redlock.TestTwo`\n"},
			[]string{"A2 is defined twice"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string][]byte{"ALGORITHM.md": []byte(algo), "redlock/x_test.go": []byte(proving)}
			for k, v := range tc.files {
				files[k] = []byte(v)
			}
			got := checkRules(files)
			if len(got) != len(tc.want) {
				t.Fatalf("problems:\n%s\nwant %d: %q", strings.Join(got, "\n"), len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// TestRuleCitesForms pins the citation forms the repository uses.
func TestRuleCitesForms(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"ALGORITHM.md A7", "A7"},
		{"(A7)", "A7"},
		{"// A7: x", "A7"},
		{"A1-A10, H1", "A1 A2 A3 A4 A5 A6 A7 A8 A9 A10 H1"},
		{"R1, R3", "R1 R3"},
		{"E1–E3", "E1 E2 E3"},
		{"A5, A6 on", "A5 A6"},
		{"N1-R2", "N1 R2"},
		{"C3 and SHA1, TestA1, A100, x86, E2E, F4x", "C3"},
	} {
		var ids []string
		for _, c := range citesIn(tc.text, 1, 0) {
			ids = append(ids, c.id)
		}
		if got := strings.Join(ids, " "); got != tc.want {
			t.Errorf("citesIn(%q) = %q, want %q", tc.text, got, tc.want)
		}
	}
}
