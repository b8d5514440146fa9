/* main: placeholder until the server lands. */
#include <stdio.h>

int
main(void)
{
    return 1;
}
