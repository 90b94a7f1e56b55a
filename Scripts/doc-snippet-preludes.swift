// Declarations that documentation fragments use, one prelude each (Scripts/check-doc-snippets).
// Each is pasted at file scope above the snippets that name it in their marker, so keep
// every declaration fileprivate.
