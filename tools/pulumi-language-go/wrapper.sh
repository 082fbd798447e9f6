#!/bin/sh
# pulumi-language-go, as the Pulumi CLI starts it (working directory = the project directory).
# The Go host built here (SDK v3.62) takes the `binary` runtime option only as a flag, while
# today's CLI sends options inside its Run request. chall-manager writes the binary of a prepared
# scenario to .cm-go-binary in the stack's project directory; pass it on the old way.
binary=""
if [ -f .cm-go-binary ]; then binary=$(cat .cm-go-binary); fi
exec "@REAL_HOST@" ${binary:+-binary=$binary} "$@"
