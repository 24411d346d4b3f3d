// Healthy Java: four threads add to a shared counter under a lock, the main thread joins them and
// the JVM exits 0 (HotSpot still takes its deliberate SIGSEGVs on the way).
public class Healthy {
    static long counter;

    public static void main(String[] args) throws InterruptedException {
        Object lock = new Object();
        Thread[] threads = new Thread[4];
        for (int i = 0; i < threads.length; i++) {
            final int n = i + 1;
            threads[i] = new Thread(() -> {
                for (int j = 0; j < 10000; j++) {
                    synchronized (lock) {
                        counter += n;
                    }
                }
            }, "worker-" + n);
            threads[i].start();
        }
        for (Thread t : threads) t.join();
        System.out.println("counter " + counter);
    }
}
