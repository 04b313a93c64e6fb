# The pure parsers and codecs under unit tests (t/unit/claw_unit.c), linked
# without nginx; make builds the program before running the suites.
use strict;
use warnings;

my $bin = 'build/unit/claw_unit';

if (!-x $bin) {
    print "1..1\nnot ok 1 - $bin is built (make unit)\n";
    exit 1;
}

exec $bin or die "exec $bin: $!\n";
