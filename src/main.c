/*
 * main: `ignis <command>`: dispatches to the subcommands in src/cli/.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct cli_command commands[] = {
    {"serve", "serve [--listen HOST:PORT] [--data-dir DIR] [--no-sandbox]", cmd_serve},
    {"deploy",
     "deploy DIR --name N --runtime R --handler H [--timeout S] [--memory MB] "
     "[--env K=V]...",
     cmd_deploy},
    {"invoke", "invoke NAME [JSON] [--tail]", cmd_invoke},
    {"logs", "logs NAME [--follow] [--since MINUTES]", cmd_logs},
    {"ls", "ls", cmd_ls},
    {"bill", "bill [--since T] [--until T] [--by function] [--json]", cmd_bill},
    {NULL, NULL, NULL},
};

static int usage(FILE *out)
{
    fprintf(out, "usage: ignis <command> [options]\n\ncommands:\n");
    for (const struct cli_command *c = commands; c->name; c++)
        fprintf(out, "  ignis %s\n", c->usage);
    return out == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0)
        return usage(stdout);
    for (const struct cli_command *c = commands; c->name; c++)
        if (strcmp(argv[1], c->name) == 0)
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "ignis: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
