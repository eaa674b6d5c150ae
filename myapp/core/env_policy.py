"""Environment variables that make a program load or run code of the caller's choosing (issue 13 B7).

A task that receives secrets (a template's secret parameter) must not be given any of these by its
author: `PYTHONPATH` pointing at a `sitecustomize.py` written upstream, `LD_PRELOAD`, `BASH_ENV`,
`NODE_OPTIONS=--require ...` all run code inside the template's own process, before or beside the
template's command, with the secret in reach. The template itself (reviewed) may set them.
"""

from __future__ import annotations

# Exact names: interpreters' and tools' startup hooks, module paths and option variables.
CODE_LOADING_ENV = frozenset(
    {
        # shells
        "ENV",
        "BASH_ENV",
        "SHELLOPTS",
        "BASHOPTS",
        "PS4",
        "PROMPT_COMMAND",
        "IFS",
        "CDPATH",
        "GLOBIGNORE",
        "ZDOTDIR",
        # programs looked up, rc files found, tools that run a command they are given
        "PATH",
        "HOME",
        "XDG_CONFIG_HOME",
        "XDG_CONFIG_DIRS",
        "EDITOR",
        "VISUAL",
        "PAGER",
        "BROWSER",
        "LESSOPEN",
        "LESSCLOSE",
        "MANPAGER",
        # Python
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PYTHONUSERBASE",
        "PYTHONPLATLIBDIR",
        "PYTHONEXECUTABLE",
        "PYTHONWARNINGS",
        "PYTHONBREAKPOINT",
        "PYTHONINSPECT",
        "PYTHONSAFEPATH",
        "PYTHONNOUSERSITE",
        "PYTHONPYCACHEPREFIX",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        # Perl, Ruby, Node, PHP, Lua, R, Julia, Tcl, Java, .NET, Go
        "PERL5LIB",
        "PERLLIB",
        "PERL5OPT",
        "PERL5DB",
        "RUBYOPT",
        "RUBYLIB",
        "GEM_HOME",
        "GEM_PATH",
        "BUNDLE_GEMFILE",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PHPRC",
        "PHP_INI_SCAN_DIR",
        "LUA_INIT",
        "LUA_PATH",
        "LUA_CPATH",
        "R_PROFILE",
        "R_PROFILE_USER",
        "R_ENVIRON",
        "R_ENVIRON_USER",
        "R_LIBS",
        "R_LIBS_USER",
        "JULIA_LOAD_PATH",
        "JULIA_DEPOT_PATH",
        "TCLLIBPATH",
        "CLASSPATH",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "DOTNET_STARTUP_HOOKS",
        "GOFLAGS",
        # the C library, the dynamic loader, OpenSSL engines, Kerberos/SSL configuration that loads modules
        "GCONV_PATH",
        "GLIBC_TUNABLES",
        "MALLOC_CONF",
        "OPENSSL_CONF",
        "OPENSSL_ENGINES",
        "OPENSSL_MODULES",
        "SSLKEYLOGFILE",
    }
)
# Prefixes: the dynamic loader (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT), macOS's, bash exported
# functions, git (GIT_SSH_COMMAND, GIT_EXEC_PATH, GIT_CONFIG_*), npm/pip configuration that runs scripts.
CODE_LOADING_PREFIXES = ("LD_", "DYLD_", "BASH_FUNC_", "GIT_", "NPM_CONFIG_", "PIP_")


def loads_code(name: str) -> bool:
    """Return whether setting the environment variable `name` can make a program run other code.

    Names are case-sensitive, as the environment is: `path` is an ordinary variable, `PATH` is not.
    """
    return name in CODE_LOADING_ENV or name.startswith(CODE_LOADING_PREFIXES)
