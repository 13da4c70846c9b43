# bash completion for paddock(1), the Paddock client.
# Written by hand; packaging/check-docs.sh checks that every subcommand and
# long option `paddock --help` and `paddock <cmd> --help` print appears here.

_paddock_socket() {
    local s
    s=${PADDOCK_SOCKET:-/run/paddock/paddockd.sock}
    local i
    for ((i = 1; i < COMP_CWORD; i++)); do
        if [[ ${COMP_WORDS[i]} == --socket ]]; then
            s=${COMP_WORDS[i + 1]}
        fi
    done
    printf '%s\n' "$s"
}

# Function names: asked of the daemon when it answers, else the policy files.
_paddock_functions() {
    local names
    names=$(paddock --socket "$(_paddock_socket)" --json list 2>/dev/null |
        grep -o '"name": *"[a-z0-9][a-z0-9_-]*"' | sed 's/.*"\([^"]*\)"$/\1/')
    if [[ -z $names ]]; then
        names=$(command ls /etc/paddock/functions 2>/dev/null | sed -n 's/\.toml$//p')
    fi
    printf '%s\n' "$names"
}

_paddock() {
    local cur prev words cword
    _init_completion || return

    local commands="invoke list describe deploy remove reload stats hello help"
    local global_opts="--socket --json --reply-timeout --help --version"

    local cmd="" i
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --socket | --reply-timeout) ((i++)) ;;
            -*) ;;
            *) cmd=${words[i]}; break ;;
        esac
    done

    case $prev in
        --socket)
            _filedir
            return
            ;;
        --input-file | --policy | --module)
            _filedir
            return
            ;;
        --dir)
            _filedir -d
            return
            ;;
        --input | --timeout | --trace-id | --env | --reply-timeout)
            return
            ;;
    esac

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$global_opts" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi

    local opts="$global_opts"
    case $cmd in
        invoke) opts="--input --input-file --timeout --trace-id --env $global_opts" ;;
        deploy) opts="--policy --module --dir $global_opts" ;;
        help)
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
            return
            ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi
    case $cmd in
        invoke | describe | remove)
            COMPREPLY=($(compgen -W "$(_paddock_functions)" -- "$cur"))
            ;;
    esac
} &&
    complete -F _paddock paddock

# ex: filetype=sh
