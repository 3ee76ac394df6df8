fn main() {
    println!("oxisec: not yet");
}
