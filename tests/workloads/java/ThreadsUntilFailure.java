// Starts threads that park until the end, until Thread.start fails ("unable to create native
// thread"), then prints how many ran and exits 1 (0 if the limit given as argument was reached,
// default 10000).
import java.util.concurrent.CountDownLatch;

public class ThreadsUntilFailure {
    public static void main(String[] args) {
        int max = args.length > 0 ? Integer.parseInt(args[0]) : 10000;
        CountDownLatch end = new CountDownLatch(1);
        int started = 0;
        try {
            for (; started < max; started++) {
                Thread t = new Thread(() -> {
                    try {
                        end.await();
                    } catch (InterruptedException e) {
                    }
                }, "parked-" + started);
                t.setDaemon(true);
                t.start();
            }
        } catch (OutOfMemoryError e) {
            System.out.println("started " + started + " threads, then: " + e.getMessage());
            System.out.flush();
            end.countDown();
            System.exit(1);
        }
        end.countDown();
        System.out.println("started " + started + " threads");
    }
}
