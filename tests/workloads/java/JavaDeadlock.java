// Two threads enter two monitors in opposite orders (synchronized ABBA): each holds one and waits
// for the other; the JVM's own thread dump reports "Found one Java-level deadlock". Prints "hung".
public class JavaDeadlock {
    static final Object a = new Object();
    static final Object b = new Object();

    static void transfer(Object first, Object second) {
        synchronized (first) {
            try {
                Thread.sleep(300);
            } catch (InterruptedException e) {
                return;
            }
            synchronized (second) {
                System.out.println("unreachable");
            }
        }
    }

    public static void main(String[] args) throws Exception {
        Thread t1 = new Thread(() -> transfer(a, b), "transfer-a-b");
        Thread t2 = new Thread(() -> transfer(b, a), "transfer-b-a");
        t1.start();
        t2.start();
        Thread.sleep(100);
        System.out.println("hung");
        System.out.flush();
        t1.join();
        t2.join();
    }
}
