#!/usr/bin/perl
# Sisimai's verdicts on every file of a corpus manifest, as TSV for
# `score_corpus --sisimai FILE` (the same scorer then rates Sisimai and rebound
# by the same rules): file, recipient index (1-based, in Sisimai's order),
# reason, hard (1 when softbounce is 0), delivery status, action. Sisimai 4 API (Debian's
# libsisimai-perl). Usage: bench/sisimai_rows.pl CORPUS_DIR > sisimai.tsv
use strict; use warnings;
use Sisimai;
my $dir = shift or die "usage: $0 CORPUS_DIR\n";
open my $m, '<', "$dir/manifest.tsv" or die "$dir/manifest.tsv: $!\n";
<$m>;
my %seen;
while (my $line = <$m>) {
    chomp $line;
    my ($file) = split /\t/, $line;
    next if !defined $file || $seen{$file}++;
    my $path = "$dir/samples/$file";
    my $results = eval { Sisimai->make($path, 'delivered' => 1) } || [];
    my $i = 0;
    for my $r (@$results) {
        $i++;
        my $reason = $r->reason // '';
        my $hard = (($r->softbounce // -1) eq '0') ? 1 : 0;
        my $status = $r->deliverystatus // '';
        my $action = $r->action // '';
        print join("\t", $file, $i, $reason, $hard, $status, $action), "\n";
    }
}
