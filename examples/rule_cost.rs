fn main() {
    let diags: Vec<String> = std::fs::read_to_string("/tmp/diags.txt").unwrap().lines().map(String::from).collect();
    let pats: Vec<String> = rebound::classify::rules::TEXT_RULES.iter().map(|r| r.pattern.replace(r"\b", r"(?-u:\b)")).collect();
    let singles: Vec<regex::Regex> = pats.iter().map(|p| regex::Regex::new(p).unwrap()).collect();
    let first_single = |d: &str| singles.iter().position(|r| r.is_match(d));
    let t = std::time::Instant::now();
    for _ in 0..20 { for d in &diags { std::hint::black_box(first_single(d)); } }
    println!("singles: {:.0} ns/text", t.elapsed().as_nanos() as f64 / (20.0 * diags.len() as f64));
    for k in [200usize, 400, 600, 900, 1200] {
        let mut groups: Vec<(usize, Vec<String>)> = Vec::new();
        let mut size = 0usize;
        for (i, p) in pats.iter().enumerate() {
            if groups.is_empty() || size + p.len() > k { groups.push((i, Vec::new())); size = 0; }
            size += p.len();
            groups.last_mut().unwrap().1.push(p.clone());
        }
        let sets: Vec<(usize, regex::RegexSet)> = groups.iter().map(|(b, g)| (*b, regex::RegexSet::new(g).unwrap())).collect();
        println!("{} groups", sets.len());
        let first = |d: &str| sets.iter().find_map(|(base, s)| s.matches(d).iter().next().map(|i| base + i));
        for d in &diags { std::hint::black_box(first(d)); }
        let t = std::time::Instant::now();
        for _ in 0..20 { for d in &diags { std::hint::black_box(first(d)); } }
        let diff = diags.iter().filter(|d| first(d) != first_single(d)).count();
        println!("sets of {k}: {:.0} ns/text, disagreements {diff}", t.elapsed().as_nanos() as f64 / (20.0 * diags.len() as f64));
    }
}
