#!/usr/bin/perl
# Sisimai's parse rate over a directory of *.eml files (for the comparison in
# bench/BENCHMARKS.md): every file is read into memory first, then parsed with
# Sisimai->make (v4 API; `apt-get install libsisimai-perl`). Best of 3 rounds.
# Usage: bench/sisimai.pl DIR
use strict; use warnings;
use File::Find; use Time::HiRes qw(time); use Sisimai;
my $dir = shift or die "usage: $0 DIR\n";
my @raw;
find(sub { return unless /\.eml$/; local $/; open my $f, '<', $_ or return; push @raw, scalar <$f> }, $dir);
my $best;
for (1 .. 3) {
    my $t = time;
    Sisimai->make(\$_, 'input' => 'email') for @raw;
    my $dt = time - $t;
    $best = $dt if !defined $best || $dt < $best;
}
printf "Sisimai %s: %d messages in %.3f s: %.0f msgs/s\n", $Sisimai::VERSION, scalar @raw, $best, @raw / $best;
