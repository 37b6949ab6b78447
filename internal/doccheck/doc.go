// Package doccheck holds no library code: its tests keep the documents of
// the repository honest, and `make test` (go test ./...) runs them.
//
// The rules check reads ALGORITHM.md, which defines the numbered rules
// (a section letter and a number, "### A7. ..."), and fails when
//
//   - a file cites a rule id that ALGORITHM.md does not define. Cited means:
//     an id such as A7, or a range such as A1-A10 or E1-E4 (every id in it),
//     in a comment or a string literal of a .go file, or anywhere in a .lua,
//     .sh or .yml file, a Makefile, a Dockerfile, an extensionless script
//     (#!), README.md or ALGORITHM.md itself. An id is a capital section
//     letter (A, H, E, R, F, N, C) and one or two digits standing alone, so
//     "(A7)", "// A7", "ALGORITHM.md A7", "R1, R3" and "N1-N3" all count,
//     and "SHA1" or "TestA1" do not;
//   - a rule outside section N is named by no test: no Test, Example or
//     Fuzz function (its doc comment or its body) cites it. The deployment
//     rules of section N are documented and checked by Client.Check; a test
//     may name them, none has to;
//   - the "Tests:" line of a rule names a test function that does not
//     exist, or one that does not cite the rule, or names none while a test
//     cites the rule.
//
// The files of this package are not scanned: their tables cite unknown ids
// on purpose.
//
// The README check builds every ```go block of README.md. A block that
// starts with a package clause is a complete program: it is written to a
// directory under the module root whose name starts with "_" (so ./...
// ignores it) and must pass go build and go vet. Any other block is a
// fragment: its first line must name the runnable example it is taken
// from, "// Complete version: ExampleName in dir/file_test.go"; that
// example must have an Output comment (so go test runs it), and every
// non-blank line of the fragment must appear in it, in order, indentation
// aside.
package doccheck
