// Module pause builds the real node's Pod sandbox program: it holds a Pod's namespaces open and does nothing else.
module bosun.dev/tools/pause

go 1.25.0
